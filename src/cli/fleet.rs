//! The arguments of `arcella fleet` (built with the `mqtt` feature).

use clap::Subcommand;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct FleetArgs {
    /// The broker (mqtt://HOST[:PORT]).
    #[arg(long, env = "ARCELLA_BROKER", value_name = "URL")]
    pub broker: String,
    /// This operator's name on the broker (replies come to it).
    #[arg(long, value_name = "NAME", default_value = "ops")]
    pub client: String,
    #[command(subcommand)]
    pub verb: FleetVerb,
}

#[derive(Debug, Subcommand)]
pub enum FleetVerb {
    /// Every device the broker knows: presence, version, board, modules,
    /// desired-state progress.
    Devices,
    /// Publish an artifact and a new desired state with this module, then
    /// follow every targeted device; exit 0 when every online one
    /// converged.
    Deploy(DeployArgs),
    /// Publish a new desired state without this module.
    Undeploy(UndeployArgs),
    /// Staged rollouts to a group: `start`, `status`, `abort`.
    Rollout(RolloutArgs),
    /// Compile again, from the source the desired-state document keeps,
    /// every module a targeted device reports needing an artifact for its
    /// engine (Arcella upgraded, board or [engine] changed), for every
    /// engine of the target, and publish the next version; then follow it
    /// like deploy. Needs the compiler (a build host).
    Rebuild(RebuildArgs),
    /// Clear the retained chunks of every artifact that no desired-state
    /// document on the broker (or applied by a device) refers to.
    Purge(PurgeArgs),
}

/// Who signs a desired-state document, and whose earlier documents to
/// build on.
#[derive(Debug, clap::Args)]
pub struct SignerArgs {
    /// Sign the desired-state document (and the artifact, unless
    /// --signature is given) with this secret key from `arcella keygen`.
    #[arg(long, value_name = "FILE", env = "ARCELLA_KEY")]
    pub key: PathBuf,
    /// Also build on documents signed by this public key (another
    /// operator's, or the key before a rotation); repeatable.
    #[arg(long = "trust", value_name = "FILE.pub")]
    pub trust: Vec<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct PurgeArgs {
    /// Say what would be cleared; change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, clap::Args)]
pub struct TargetArgs {
    /// One device.
    #[arg(
        long = "to-device",
        value_name = "ID",
        required_unless_present = "group",
        conflicts_with = "group"
    )]
    pub device: Option<String>,
    /// Every device of a group (`[mqtt] group` in their config).
    #[arg(long = "to-group", value_name = "NAME")]
    pub group: Option<String>,
    /// Stop following after this long.
    #[arg(long, value_name = "DURATION", default_value = "120s", value_parser = arcella_core::units::parse_timeout)]
    pub timeout: Duration,
}

#[derive(Debug, clap::Args)]
pub struct DeployArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub module: ModuleArgs,
}

/// The module a deploy or a rollout publishes.
#[derive(Debug, clap::Args)]
pub struct ModuleArgs {
    /// The artifact (.cwasm, compiled for the targeted devices), or the
    /// module's .wasm (or .wat): compiled here once per engine the
    /// targeted devices report, each device getting its own (mixed
    /// boards; builds with the compiler)
    pub artifact: PathBuf,
    #[arg(long, value_name = "FILE")]
    pub component: Option<PathBuf>,
    #[arg(long, value_name = "FILE")]
    pub deployment: PathBuf,
    /// Where the devices' board names are looked up when compiling a .wasm
    /// [default: ./board-configs, then boards/ beside the user's
    /// arcella.toml, then /usr/share/arcella/boards, then the built-in ones]
    #[arg(long, value_name = "DIR", env = "ARCELLA_BOARDS_DIR")]
    pub boards_dir: Option<PathBuf>,
    #[command(flatten)]
    pub signer: SignerArgs,
    /// The artifact's signature made by `arcella sign` (e.g. on a build
    /// host); default: the artifact is signed with --key.
    #[arg(long, value_name = "FILE")]
    pub signature: Option<PathBuf>,
    /// Install it but keep it stopped.
    #[arg(long)]
    pub stopped: bool,
    /// Chunk size on the broker (1K..=240K).
    #[arg(long, value_name = "BYTES", default_value = "64K", value_parser = arcella_core::units::parse_bytes)]
    pub chunk_size: u64,
}

#[derive(Debug, clap::Args)]
pub struct RolloutArgs {
    #[command(subcommand)]
    pub verb: RolloutVerb,
}

#[derive(Debug, Subcommand)]
pub enum RolloutVerb {
    /// Roll a module out to a group wave by wave: each wave's devices get
    /// it, must all be healthy and stay so (and online) through the soak
    /// before the next wave; past --max-failures the rollout aborts and
    /// the devices already updated return to the previous version. Run
    /// the same command again to resume an interrupted rollout.
    Start(RolloutStartArgs),
    /// Where the group's rollout is: phase, waves, each device, and
    /// whether a run is driving it now.
    Status(RolloutGroupArgs),
    /// Abort the group's unfinished rollout: every device already given
    /// the new version returns to the previous one.
    Abort(RolloutAbortArgs),
}

#[derive(Debug, clap::Args)]
pub struct RolloutStartArgs {
    /// The group (`[mqtt] group` in its devices' config).
    #[arg(long = "to-group", value_name = "NAME")]
    pub group: String,
    /// How many devices of the group have the new version once each wave
    /// is done: counts or shares, growing, the last `100%`.
    #[arg(long, value_name = "LIST", default_value = "1,10%,50%,100%", value_parser = parse_waves)]
    pub waves: Waves,
    /// How long every device of a wave must stay healthy and online, once
    /// all are, before the next wave.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = arcella_core::units::parse_duration)]
    pub soak: Duration,
    /// Failures over the whole rollout past which it aborts: a count, or
    /// a share of the group (rounded down).
    #[arg(long, value_name = "N|PCT", default_value = "0", value_parser = parse_amount)]
    pub max_failures: arcella_mqtt::rollout::Amount,
    /// How long a wave's devices get to reach a verdict (a device without
    /// one by then counts as a failure).
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = arcella_core::units::parse_timeout)]
    pub wave_timeout: Duration,
    #[command(flatten)]
    pub module: ModuleArgs,
}

/// A rollout's waves (`--waves`).
#[derive(Debug, Clone)]
pub struct Waves(pub Vec<arcella_mqtt::rollout::Amount>);

fn parse_waves(text: &str) -> Result<Waves, String> {
    arcella_mqtt::rollout::parse_waves(text)
        .map(Waves)
        .map_err(|e| e.to_string())
}

fn parse_amount(text: &str) -> Result<arcella_mqtt::rollout::Amount, String> {
    text.parse()
        .map_err(|e: arcella_mqtt::rollout::PlanError| e.to_string())
}

#[derive(Debug, clap::Args)]
pub struct RolloutGroupArgs {
    #[arg(long = "to-group", value_name = "NAME")]
    pub group: String,
    /// Trust rollout states signed by this operator key's public half
    /// (besides --key's); repeatable.
    #[arg(long = "trust", value_name = "FILE.pub")]
    pub trust: Vec<PathBuf>,
    /// The secret key whose public half signed the rollout (its own
    /// operator's); or give --trust only.
    #[arg(long, value_name = "FILE", env = "ARCELLA_KEY")]
    pub key: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct RolloutAbortArgs {
    #[arg(long = "to-group", value_name = "NAME")]
    pub group: String,
    #[command(flatten)]
    pub signer: SignerArgs,
}

#[derive(Debug, clap::Args)]
pub struct RebuildArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub signer: SignerArgs,
    /// Where the devices' board names are looked up [default: as deploy's]
    #[arg(long, value_name = "DIR", env = "ARCELLA_BOARDS_DIR")]
    pub boards_dir: Option<PathBuf>,
    /// Before upgrading the devices to this arcella's version: compile
    /// every module that keeps its source for the engine this arcella
    /// makes of each device's board, beside the artifacts they run now,
    /// so each device finds its new artifact the moment it restarts on
    /// the new version.
    #[arg(long)]
    pub ahead: bool,
}

#[derive(Debug, clap::Args)]
pub struct UndeployArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub signer: SignerArgs,
    pub module: String,
}
