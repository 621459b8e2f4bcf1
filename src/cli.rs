//! Command-line interface definition.

use arcella_core::ArtifactTarget;
use arcella_core::run::DirGrant;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

// The fleet verbs' arguments: only in a build with MQTT (feature `mqtt`).
#[cfg(feature = "mqtt")]
mod fleet;
#[cfg(feature = "mqtt")]
pub use fleet::*;

/// Arcella: a WebAssembly runtime for constrained Linux devices.
#[derive(Debug, Parser)]
#[command(name = "arcella", version, about, propagate_version = true)]
pub struct Cli {
    /// Print machine-readable JSON instead of text (docs/cli.md lists
    /// every object); errors too, on stderr, with the same exit codes.
    #[arg(long, global = true)]
    pub json: bool,
    /// `--socket`, `--broker`, `--device`, `--key` given before the verb,
    /// as older releases took them. Hidden: each verb that talks to a
    /// daemon shows them itself, and the others refuse them.
    #[command(flatten)]
    pub before_verb: EarlyConnectArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// How a management verb reaches its daemon.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Reaching the daemon")]
pub struct ConnectArgs {
    /// The daemon's management socket [default: /run/arcella/arcella.sock
    /// as root, $XDG_RUNTIME_DIR/arcella/arcella.sock otherwise].
    #[arg(long, env = "ARCELLA_SOCKET", value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Manage a device through this MQTT broker instead of the local
    /// socket (mqtt://HOST[:PORT]); with --device.
    #[arg(long, env = "ARCELLA_BROKER", value_name = "URL")]
    pub broker: Option<String>,
    /// The device to manage through --broker.
    #[arg(long, env = "ARCELLA_DEVICE", value_name = "ID")]
    pub device: Option<String>,
    /// With --broker: sign requests (and artifacts to install) with this
    /// secret key from `arcella keygen`; the device must trust its public
    /// key. Required for every verb but reads.
    #[arg(long = "key", env = "ARCELLA_KEY", value_name = "FILE")]
    pub operator_key: Option<PathBuf>,
}

impl ConnectArgs {
    /// These settings, with the ones given before the verb winning.
    pub fn merged(&self, early: &EarlyConnectArgs) -> Self {
        Self {
            socket: early.socket.clone().or_else(|| self.socket.clone()),
            broker: early.broker.clone().or_else(|| self.broker.clone()),
            device: early.device.clone().or_else(|| self.device.clone()),
            operator_key: early.operator_key.clone().or_else(|| self.operator_key.clone()),
        }
    }
}

/// [`ConnectArgs`] before the verb: hidden, and without their environment
/// variables (those belong to the verbs), so a verb that does not use
/// them can refuse them when they are given.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct EarlyConnectArgs {
    #[arg(long, hide = true, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    #[arg(long, hide = true, value_name = "URL")]
    pub broker: Option<String>,
    #[arg(long, hide = true, value_name = "ID")]
    pub device: Option<String>,
    #[arg(long = "key", hide = true, value_name = "FILE")]
    pub operator_key: Option<PathBuf>,
}

impl EarlyConnectArgs {
    /// The first flag given, as typed: `--socket`, ….
    pub fn first_given(&self) -> Option<&'static str> {
        [
            ("--socket", self.socket.is_some()),
            ("--broker", self.broker.is_some()),
            ("--device", self.device.is_some()),
            ("--key", self.operator_key.is_some()),
        ]
        .into_iter()
        .find_map(|(flag, given)| given.then_some(flag))
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Compile a .wasm (or .wat) module or component into an artifact.
    #[cfg(feature = "compiler")]
    Compile(CompileArgs),
    /// Run a WASI command: a preview-1 module or a wasi:cli/command component.
    Run(RunArgs),
    /// Describe an artifact file, or an installed module: kind,
    /// exports/imports, fingerprint, digests.
    Inspect(InspectArgs),
    /// Run the daemon: keep installed modules running, serve the socket.
    Daemon(DaemonArgs),
    /// Install a module: an artifact (or .wasm) plus its manifests.
    Install(InstallArgs),
    /// Replace an installed module with a new version: staged and checked
    /// first, then swapped in; rolled back if it fails its health window.
    Update(UpdateArgs),
    /// Make the previous version of a module current again (and run it).
    Rollback(ModuleArg),
    /// Delete artifacts and stale uploads nothing refers to; print what
    /// was freed.
    Gc(ConnectOnly),
    /// Start an installed module.
    Start(ModuleArg),
    /// Stop a running module.
    Stop(ModuleArg),
    /// Stop and start a module.
    Restart(ModuleArg),
    /// Stop and uninstall a module. Its key-value state is kept unless
    /// --purge-state is given.
    Remove(RemoveArgs),
    /// List installed modules.
    List(ConnectOnly),
    /// Show one module's state, version, restarts and last error.
    Status(ModuleArg),
    /// Show a module's captured output.
    Logs(LogsArgs),
    /// Show or change a module's runtime configuration (`wasi:config`):
    /// `config MODULE`, `config MODULE get KEY`, `config MODULE set
    /// KEY=VALUE...`, `config MODULE unset KEY...`.
    Config(crate::cmd::config::ConfigArgs),
    /// Show the daemon's version, engine fingerprint, board, data dir.
    Info(ConnectOnly),
    /// Show typed calls between modules: who provides which interface,
    /// who consumes it, at which version, in which process; and who waits.
    Wiring(ConnectOnly),
    /// Show what the device and its modules use: free memory and disk,
    /// uptime, resident memory of the daemon and each worker, and each
    /// module's state, memory, CPU time and restarts.
    Telemetry(ConnectOnly),
    /// Show the audit trail: who changed what, denials, starts and exits.
    Audit(AuditArgs),
    /// Make an Ed25519 key pair for signing artifacts.
    Keygen(KeygenArgs),
    /// Sign an artifact (writes ARTIFACT.sig).
    Sign(SignArgs),
    /// The fleet behind an MQTT broker: devices, deploy, undeploy.
    #[cfg(feature = "mqtt")]
    Fleet(FleetArgs),
    /// Print a completion script for a shell: `arcella completions bash
    /// > /etc/bash_completion.d/arcella`.
    Completions(CompletionsArgs),
    /// Write the man pages and completion scripts into DIR (the package
    /// build calls this).
    #[command(name = "__generate-docs", hide = true)]
    GenerateDocs(GenerateDocsArgs),
    /// Read and change a module's key-value state (wasi:keyvalue), also
    /// while it runs.
    Kv(KvArgs),
    /// Write the WIT package set components build against (the
    /// arcella:platform worlds and their dependencies) into DIR.
    Wit(WitArgs),
    /// Make a project for a new module from a template built into the
    /// binary: source, component.toml, deployment.toml, a one-command
    /// build (./build.sh), a README and the WIT package set. `arcella new
    /// room-sensor --lang python`.
    #[cfg(feature = "compiler")]
    New(NewArgs),
}

#[derive(Debug, clap::Args)]
pub struct NewArgs {
    /// The module's name: kebab-case words (`room-sensor`); it names the
    /// project's directory, the module and its WIT world.
    pub name: String,
    /// The language of the guest.
    #[arg(long)]
    pub lang: NewLang,
    /// What the module is: a long-running service, a command that runs to
    /// completion, a provider of typed calls, or an HTTP handler.
    #[arg(long, default_value = "service")]
    pub kind: NewKind,
    /// Where to make the project [default: ./NAME]; it must be empty or
    /// absent.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// The languages `arcella new` has templates for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum NewLang {
    /// Rust, built for wasm32-wasip2 with wit-bindgen.
    Rust,
    /// C, built with clang and wasi-libc, bindings by wit-bindgen.
    C,
    /// Python, built with componentize-py.
    Python,
    /// JavaScript, built with componentize-js.
    Js,
}

/// The kinds of module `arcella new` makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum NewKind {
    /// A long-running service (`arcella:platform/service`).
    Service,
    /// A command that runs to completion (`arcella:platform/command`).
    Command,
    /// A provider of typed calls (`arcella:platform/provider` plus an
    /// interface of its own).
    Provider,
    /// An HTTP handler (`arcella:platform/http-handler`).
    Http,
}

#[derive(Debug, clap::Args)]
pub struct WitArgs {
    /// Where to write `platform.wit` and `deps/` (created if need be).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

impl Command {
    /// How the verb reaches a daemon, if it talks to one.
    pub fn connect(&self) -> Option<&ConnectArgs> {
        match self {
            Command::Install(a) => Some(&a.connect),
            Command::Update(a) => Some(&a.connect),
            Command::Logs(a) => Some(&a.connect),
            Command::Audit(a) => Some(&a.connect),
            Command::Config(a) => Some(&a.connect),
            Command::Inspect(a) => Some(&a.connect),
            Command::Gc(a) | Command::List(a) | Command::Info(a) | Command::Wiring(a) | Command::Telemetry(a) => {
                Some(&a.connect)
            }
            Command::Rollback(a) | Command::Start(a) | Command::Stop(a) | Command::Restart(a) | Command::Status(a) => {
                Some(&a.connect)
            }
            Command::Remove(a) => Some(&a.target.connect),
            Command::Kv(a) => Some(&a.connect),
            _ => None,
        }
    }
}

/// A verb with no arguments but how to reach the daemon.
#[derive(Debug, clap::Args)]
pub struct ConnectOnly {
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    pub shell: Shell,
}

/// The shells `arcella completions` writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, clap::Args)]
pub struct GenerateDocsArgs {
    /// Gets man/*.1 and completions/{arcella.bash,_arcella,arcella.fish}.
    pub dir: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct KeygenArgs {
    /// Writes PREFIX.key (secret, mode 0600) and PREFIX.pub.
    #[arg(long, value_name = "PREFIX", default_value = "arcella-signing")]
    pub out: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct SignArgs {
    /// The secret key from `arcella keygen`.
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    pub artifact: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct DaemonArgs {
    /// Configuration file [default: /etc/arcella/arcella.toml as root,
    /// $XDG_CONFIG_HOME/arcella/arcella.toml otherwise; optional].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Overrides `data_dir` from the configuration.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Only check the configuration (and its board) and print what the
    /// daemon would run with, then exit.
    #[arg(long)]
    pub check: bool,
    /// Overrides `socket` from the configuration (as `ARCELLA_SOCKET`
    /// does, so one variable points the daemon and the CLI at one socket).
    #[arg(long, env = "ARCELLA_SOCKET", value_name = "PATH")]
    pub socket: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct InstallArgs {
    /// The artifact (.cwasm), or a .wasm on daemons built with the compiler.
    pub artifact: PathBuf,
    /// What the module is (required for preview-1 modules).
    #[arg(long, value_name = "FILE")]
    pub component: Option<PathBuf>,
    /// How this device runs it.
    #[arg(long, value_name = "FILE")]
    pub deployment: PathBuf,
    /// If a module with this id is installed, update it to this version
    /// instead of failing (`install || update` in one verb).
    #[arg(long)]
    pub replace: bool,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, clap::Args)]
pub struct UpdateArgs {
    /// The installed module to replace.
    pub module: String,
    /// The new version's artifact (.cwasm), or a .wasm on daemons built
    /// with the compiler.
    pub artifact: PathBuf,
    /// The new version's component.toml [default: the current one's].
    #[arg(long, value_name = "FILE")]
    pub component: Option<PathBuf>,
    /// The new version's deployment.toml [default: the current one's].
    #[arg(long, value_name = "FILE")]
    pub deployment: Option<PathBuf>,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, clap::Args)]
pub struct ModuleArg {
    /// The module's id (its name in component.toml).
    pub module: String,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    pub module: String,
    /// Keep printing new lines (and state changes) as they come.
    #[arg(short, long)]
    pub follow: bool,
    /// Only the last N lines [default: every line kept].
    #[arg(long, value_name = "N")]
    pub tail: Option<u32>,
    /// Only lines at this level or above: trace, debug, info, warn, error,
    /// critical (stdout and the daemon's notes count as info, stderr as
    /// warn; `wasi:logging` lines carry their own).
    #[arg(long, value_name = "LEVEL")]
    pub level: Option<crate::cmd::level::Level>,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// Only records about this module.
    #[arg(long, value_name = "MODULE")]
    pub module: Option<String>,
    /// Only records this recent: 90s, 30m, 1h, 2d.
    #[arg(long, value_name = "AGE", value_parser = crate::cmd::audit::parse_age)]
    pub since: Option<std::time::Duration>,
    /// The most records to show (the newest; at most 128).
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub limit: u32,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, clap::Args)]
pub struct CompileArgs {
    /// The .wasm or .wat file to compile (module or component, detected).
    pub input: PathBuf,
    /// Where to write the artifact [default: INPUT with extension .cwasm].
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// native, pulley32, pulley64, or a target triple such as
    /// aarch64-unknown-linux-gnu.
    #[arg(long, default_value = "native", conflicts_with = "board")]
    pub target: ArtifactTarget,
    /// Compile for a board: its artifact target and engine settings, so the
    /// artifact loads on a device whose arcella.toml names that board. A
    /// name (looked up as NAME.toml) or a path to a board file.
    #[arg(long, value_name = "NAME|FILE")]
    pub board: Option<String>,
    /// Where board names are looked up [default: ./board-configs, then
    /// boards/ beside the user's arcella.toml, then /usr/share/arcella/boards,
    /// then the boards built into arcella].
    #[arg(long, env = "ARCELLA_BOARDS_DIR", value_name = "DIR")]
    pub boards_dir: Option<PathBuf>,
    /// Compile in fuel metering, which a fuel limit (`--fuel N`,
    /// `limits.fuel`) needs. It costs about a quarter of the guest's speed,
    /// so leave it out for modules without a fuel limit.
    #[arg(long)]
    pub fuel: bool,
    /// Leave out epoch checks (about a fifth of the guest's speed): for
    /// `arcella run` without `--timeout` only; the daemon refuses such
    /// artifacts (it needs them to share its thread and to stop guests).
    #[arg(long)]
    pub no_epoch: bool,
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// A .cwasm artifact, or (on builds with the compiler) a .wasm/.wat file.
    pub file: PathBuf,
    /// Fuel budget: roughly, wasm instructions the guest may execute.
    #[arg(long, value_name = "N")]
    pub fuel: Option<u64>,
    /// Most bytes of linear memory the guest may hold (suffixes K, M, G).
    #[arg(long, value_name = "BYTES", value_parser = arcella_core::units::parse_bytes)]
    pub max_memory: Option<u64>,
    /// Wall-clock limit, such as 500ms, 10s, 2m.
    #[arg(long, value_name = "DURATION", value_parser = arcella_core::units::parse_timeout)]
    pub timeout: Option<Duration>,
    /// Grant a host directory as HOST::GUEST, or HOST::GUEST:ro (repeatable).
    #[arg(long = "dir", value_name = "HOST::GUEST[:ro]")]
    pub dirs: Vec<DirGrant>,
    /// Grant an environment variable as KEY=VALUE (repeatable).
    #[arg(long = "env", value_name = "K=V", value_parser = parse_env)]
    pub env: Vec<(String, String)>,
    /// Let a component open TCP connections to HOST:PORT (an address,
    /// [IPv6], ADDR/PREFIX or a DNS name; PORT a number, FIRST-LAST or *);
    /// repeatable. Without network flags the guest opens no socket.
    #[arg(long = "connect", value_name = "HOST:PORT", value_parser = parse_rule)]
    pub connect: Vec<String>,
    /// Let a component listen on (or bind a UDP port to) the local
    /// ADDRESS:PORT, such as 0.0.0.0:8080 or 127.0.0.1:*; repeatable.
    #[arg(long = "listen", value_name = "ADDRESS:PORT", value_parser = parse_listen_rule)]
    pub listen: Vec<String>,
    /// Let a component exchange UDP datagrams with HOST:PORT; repeatable.
    #[arg(long = "udp", value_name = "HOST:PORT", value_parser = parse_rule)]
    pub udp: Vec<String>,
    /// Let a component resolve DNS names.
    #[arg(long)]
    pub lookup: bool,
    /// Serve the component's wasi:http/incoming-handler on ADDRESS:PORT
    /// (such as 127.0.0.1:8080) until interrupted, a fresh instance per
    /// request, as the daemon does for `[http] listen`.
    #[arg(long, value_name = "ADDRESS:PORT")]
    pub serve_http: Option<String>,
    /// With --serve-http: requests handled at once (1-64).
    #[arg(long, value_name = "N", default_value_t = arcella_core::manifest::DEFAULT_INSTANCES)]
    pub http_instances: u16,
    /// With --serve-http: a response not begun by then gets 504.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = arcella_core::units::parse_timeout)]
    pub http_timeout: Duration,
    /// A PEM file of CA certificates the guest's https requests trust
    /// besides Mozilla's roots.
    #[arg(long, value_name = "FILE")]
    pub http_ca: Option<PathBuf>,
    /// On SIGINT/SIGTERM, how long a guest that imports the shutdown call
    /// has to finish after it is raised (one that does not is ended at
    /// once).
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = arcella_core::units::parse_timeout)]
    pub grace: Duration,
    /// Arguments passed to the guest.
    #[arg(last = true)]
    pub args: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// An artifact file, or the id of an installed module.
    pub target: PathBuf,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

fn parse_rule(s: &str) -> Result<String, String> {
    arcella_core::host::network::Rule::parse(s)
        .map(|_| s.to_owned())
        .map_err(|e| format!("`{s}` {e}"))
}

fn parse_listen_rule(s: &str) -> Result<String, String> {
    arcella_core::host::network::Rule::parse_listen(s)
        .map(|_| s.to_owned())
        .map_err(|e| format!("`{s}` {e}"))
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    arcella_core::run::parse_env(s).map_err(|e| e.to_string())
}

/// `remove MODULE [--purge-state]`.
#[derive(Debug, clap::Args)]
pub struct RemoveArgs {
    #[command(flatten)]
    pub target: ModuleArg,
    /// Also delete the module's key-value state (kept otherwise, for a
    /// reinstall); works on state left by a module removed earlier too.
    #[arg(long)]
    pub purge_state: bool,
}

/// `kv MODULE [--bucket NAME] VERB`.
#[derive(Debug, clap::Args)]
pub struct KvArgs {
    /// The module's id.
    pub module: String,
    /// The bucket (one of the module's `[capabilities.keyvalue] buckets`).
    #[arg(long, global = true, default_value = "default", value_name = "NAME")]
    pub bucket: String,
    #[command(subcommand)]
    pub verb: KvVerb,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Subcommand)]
pub enum KvVerb {
    /// Every key of the bucket, one a line.
    List,
    /// A key's value: as text if it is UTF-8, else `hex:` and its hex digits.
    Get { key: String },
    /// Set a key to VALUE (UTF-8 text; `hex:DIGITS` for bytes).
    Set { key: String, value: String },
    /// Delete a key (no error if it is absent).
    Delete { key: String },
    /// Write every entry as JSON lines to FILE (stdout without FILE):
    /// `{"key": K, "value": TEXT}`, or `{"key": K, "hex": DIGITS}` for a
    /// value that is not UTF-8.
    Export { file: Option<PathBuf> },
    /// Set every entry of a file written by `export` (same format).
    Import { file: PathBuf },
}
