//! `arcella fleet`: the devices behind a broker, deploy and undeploy.

use crate::cli::{DeployArgs, FleetArgs, FleetVerb, ModuleArgs, PurgeArgs, SignerArgs, TargetArgs, UndeployArgs};
use crate::cmd::render::json_value;
use crate::exit::{self, Failure};
use crate::output::outln;
use arcella_core::digest;
use arcella_core::signing;
use arcella_core::signing::ArtifactSignature;
use arcella_mqtt::broker::{BrokerError, BrokerSettings};
use arcella_mqtt::deploy::{self, ModuleSpec, Outcome, Signer};
use arcella_mqtt::operator::{Operator, OperatorError, Target};
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

/// Why a fleet verb failed.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error(transparent)]
    Operator(#[from] OperatorError),
    #[error(transparent)]
    Broker(#[from] BrokerError),
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error("not every targeted device is healthy with the new desired state")]
    NotConverged,
    #[error(transparent)]
    Rollout(#[from] arcella_mqtt::rollout::RolloutError),
}

impl From<FleetError> for Failure {
    fn from(err: FleetError) -> Self {
        match &err {
            FleetError::NotConverged => Failure::with_code(exit::NOT_CONVERGED, "not_converged", err),
            FleetError::Operator(_) | FleetError::Broker(_) => Failure::new("unreachable", err),
            FleetError::File { .. } => Failure::new("io", err),
            FleetError::Rollout(e) => super::fleet_rollout::failure(e, &err),
        }
    }
}

/// One device of `fleet devices --json` (an array of these).
#[derive(Debug, Serialize)]
struct Device {
    device: String,
    online: bool,
    /// null until the device has reported.
    version: Option<String>,
    board: Option<String>,
    group: Option<String>,
    modules: Option<usize>,
    /// idle, applying, converged, failed; null before any desired state.
    phase: Option<&'static str>,
    group_document_version: Option<u64>,
    device_document_version: Option<u64>,
}

/// The lines of `fleet deploy`, `undeploy` and `purge` with `--json`.
#[derive(Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Progress {
    /// A desired-state version is on the broker (with its artifact).
    Published {
        version: u64,
        artifact_sha256: Option<String>,
    },
    /// A targeted device left out of a deploy of a .wasm: why.
    #[cfg_attr(not(feature = "compiler"), allow(dead_code))]
    Skipped { note: String },
    /// One device's verdict: healthy, failed, offline, pending.
    Device {
        device: String,
        outcome: &'static str,
        detail: Option<String>,
    },
    /// The last line of a deploy or undeploy.
    Summary {
        healthy: usize,
        failed: usize,
        offline: usize,
        pending: usize,
    },
    /// An artifact nobody refers to: `cleared` unless `--dry-run`.
    Artifact {
        sha256: String,
        bytes: u64,
        chunks: u64,
        cleared: bool,
    },
    /// The last line of a purge.
    Purged { unreferenced: usize, referenced: usize },
}

/// An outcome as a word and its detail.
pub fn verdict(outcome: &Outcome) -> (&'static str, Option<String>) {
    match outcome {
        Outcome::Converged => ("healthy", None),
        Outcome::Failed(reasons) => ("failed", Some(reasons.join("; "))),
        Outcome::Offline => ("offline", None),
        Outcome::Pending(what) => ("pending", Some(what.clone())),
    }
}

/// The secret key in `path`.
pub fn read_key(path: &Path) -> Result<ed25519_dalek::SigningKey, FleetError> {
    signing::secret_from_text(&read_text(path)?).map_err(|e| FleetError::File {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

pub fn signer(args: &SignerArgs) -> Result<Signer, FleetError> {
    let mut others = Vec::new();
    for path in &args.trust {
        others.push(
            signing::public_from_text(&read_text(path)?).map_err(|e| FleetError::File {
                path: path.display().to_string(),
                message: e.to_string(),
            })?,
        );
    }
    Ok(Signer::new(read_key(&args.key)?).trusting(others))
}

/// Connects as operator `name`. Credentials and TLS files come from the
/// environment (ARCELLA_BROKER_USERNAME, _PASSWORD, _CA_FILE, _CLIENT_CERT,
/// _CLIENT_KEY), so they stay out of shell history and process lists.
pub fn connect(url: &str, name: &str) -> Result<Operator, FleetError> {
    connect_with_will(url, name, None)
}

/// [`connect`], with a last will the broker publishes if the connection
/// dies without a goodbye.
pub fn connect_with_will(
    url: &str,
    name: &str,
    will: Option<arcella_mqtt::rumqttc::LastWill>,
) -> Result<Operator, FleetError> {
    let client_id = format!("arcella-op-{name}-{}", std::process::id());
    let env = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    let settings = BrokerSettings {
        username: env("ARCELLA_BROKER_USERNAME").map(|v| v.to_string_lossy().into_owned()),
        password: env("ARCELLA_BROKER_PASSWORD").map(|v| v.to_string_lossy().into_owned()),
        ca_file: env("ARCELLA_BROKER_CA_FILE").map(Into::into),
        client_cert: env("ARCELLA_BROKER_CLIENT_CERT").map(Into::into),
        client_key: env("ARCELLA_BROKER_CLIENT_KEY").map(Into::into),
        ..BrokerSettings::new(url, client_id)
    };
    let mut options = settings.options()?;
    if let Some(will) = will {
        options.set_last_will(will);
    }
    Ok(Operator::connect(options, name)?)
}

pub fn read_text(path: &Path) -> Result<String, FleetError> {
    std::fs::read_to_string(path).map_err(|e| FleetError::File {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

pub fn execute(args: &FleetArgs, json: bool) -> Result<(), FleetError> {
    // A rollout connects with its claim's last will: its own connection.
    if let FleetVerb::Rollout(rollout) = &args.verb {
        return super::fleet_rollout::execute(args, rollout, json);
    }
    let mut operator = connect(&args.broker, &args.client)?;
    match &args.verb {
        FleetVerb::Devices => devices(&operator, json),
        FleetVerb::Deploy(deploy) => deploy_module(&mut operator, deploy, json),
        FleetVerb::Undeploy(undeploy) => undeploy_module(&operator, undeploy, json),
        FleetVerb::Purge(purge) => purge_artifacts(&operator, purge, json),
        FleetVerb::Rollout(_) => Ok(()),
        FleetVerb::Rebuild(rebuild) => super::fleet_rebuild::rebuild(&operator, rebuild, json),
    }
}

fn devices(operator: &Operator, json: bool) -> Result<(), FleetError> {
    let fleet = operator.devices(Duration::from_millis(500))?;
    if json {
        let devices: Vec<Device> = fleet
            .iter()
            .map(|(id, view)| {
                let report = view.report.as_ref();
                let convergence = view.convergence.as_ref();
                Device {
                    device: id.clone(),
                    online: view.online,
                    version: report.map(|r| r.info.version.clone()),
                    board: report.map(|r| r.info.board.clone()),
                    group: report.and_then(|r| r.group.clone()),
                    modules: report.map(|r| r.modules.len()),
                    phase: convergence.map(|c| match c.phase {
                        arcella_core::protocol::fleet::Phase::Idle => "idle",
                        arcella_core::protocol::fleet::Phase::Applying => "applying",
                        arcella_core::protocol::fleet::Phase::Converged => "converged",
                        arcella_core::protocol::fleet::Phase::Failed => "failed",
                    }),
                    group_document_version: convergence.and_then(|c| c.group_document.map(|d| d.version)),
                    device_document_version: convergence.and_then(|c| c.device_document.map(|d| d.version)),
                }
            })
            .collect();
        json_value(&devices);
        return Ok(());
    }
    outln!(
        "{:<20} {:<8} {:<8} {:<12} {:<8} {:>7}  desired",
        "DEVICE",
        "PRESENCE",
        "VERSION",
        "BOARD",
        "GROUP",
        "MODULES"
    );
    for (id, view) in &fleet {
        let (version, board, group, modules) = view.report.as_ref().map_or_else(
            || ("?".into(), "?".into(), "-".into(), "?".into()),
            |r| {
                (
                    r.info.version.clone(),
                    r.info.board.clone(),
                    r.group.clone().unwrap_or_else(|| "-".into()),
                    r.modules.len().to_string(),
                )
            },
        );
        let desired = view.convergence.as_ref().map_or_else(
            || "-".to_owned(),
            |c| {
                // A device that is not converged says which module keeps it
                // from it, and why.
                let why = c
                    .modules
                    .iter()
                    .find(|m| m.step.is_verdict() && !m.step.is_success())
                    .map_or_else(String::new, |m| format!(": {} {}", m.id, m.step));
                format!(
                    "{:?} (group v{}, device v{}){why}",
                    c.phase,
                    c.group_document.map_or("-".into(), |d| d.version.to_string()),
                    c.device_document.map_or("-".into(), |d| d.version.to_string())
                )
            },
        );
        let presence = if view.online { "online" } else { "offline" };
        outln!("{id:<20} {presence:<8} {version:<8} {board:<12} {group:<8} {modules:>7}  {desired}");
    }
    Ok(())
}

pub fn target(args: &TargetArgs) -> Target {
    match (&args.device, &args.group) {
        (Some(device), _) => Target::Device(device.clone()),
        (None, Some(group)) => Target::Group(group.clone()),
        // clap requires one of the two.
        (None, None) => Target::Device(String::new()),
    }
}

fn deploy_module(operator: &mut Operator, args: &DeployArgs, json: bool) -> Result<(), FleetError> {
    let signer = signer(&args.module.signer)?;
    let target = target(&args.target);
    let release = prepare(operator, &args.module, &signer, &target, json)?;
    if crate::progress::wanted(json) {
        operator.watch_publishes(publish_progress(&args.module.artifact, &release, json));
    }
    let operator = &*operator;
    let builds = release.builds();
    let version = deploy::deploy_builds(
        operator,
        &signer,
        &target,
        &builds,
        release.source.as_deref(),
        release.chunk_len,
        release.spec.clone(),
    )?;
    for build in &release.artifacts {
        let sha256 = digest::hex(&build.sha256);
        if json {
            json_value(&Progress::Published {
                version,
                artifact_sha256: Some(sha256),
            });
        } else if let Some(fingerprint) = &build.fingerprint {
            outln!(
                "published artifact {sha256} for engine {fingerprint} ({})",
                build.devices.join(", ")
            );
        } else {
            outln!("published artifact {sha256}");
        }
    }
    if !json {
        outln!("published desired state version {version}");
    }
    follow(operator, &target, version, args.target.timeout, json)
}

/// A progress line per artifact the release publishes (on a terminal),
/// named after the file given: `publishing sensor.cwasm  12.3 MiB / …`.
fn publish_progress(file: &Path, release: &Release, json: bool) -> arcella_mqtt::operator::PublishWatcher {
    let name = super::file_label(file);
    let mut names: Vec<([u8; 32], String)> = release
        .artifacts
        .iter()
        .map(|a| {
            let label = match &a.fingerprint {
                Some(fingerprint) => format!("{name} for engine {fingerprint}"),
                None => name.clone(),
            };
            (a.sha256, label)
        })
        .collect();
    if let Some(source) = &release.source {
        names.push((
            digest::sha256(source),
            format!("{name} (its source, for fleet rebuild)"),
        ));
    }
    let mut current: Option<([u8; 32], crate::progress::Progress)> = None;
    Box::new(move |sha256: &[u8; 32], acked: u64, total: u64| {
        if current.as_ref().is_none_or(|(sha, _)| sha != sha256) {
            let label = names
                .iter()
                .find(|(sha, _)| sha == sha256)
                .map_or_else(|| digest::hex(sha256), |(_, label)| label.clone());
            current = Some((
                *sha256,
                crate::progress::Progress::bytes(
                    format!("publishing {label}"),
                    format!("published {label}"),
                    total,
                    json,
                ),
            ));
        }
        if let Some((_, progress)) = current.as_mut() {
            progress.update(acked);
        }
        if acked >= total
            && let Some((_, progress)) = current.take()
        {
            progress.finish();
        }
    })
}

/// One artifact of a release: for every device, or for one engine.
pub struct Artifact {
    pub fingerprint: Option<String>,
    pub bytes: Vec<u8>,
    /// The sha256 of `bytes`, hashed once when the artifact is made (what
    /// it is signed for, published under and reported as).
    pub sha256: digest::Sha256Digest,
    pub signature: ArtifactSignature,
    /// The devices it was built for (a .wasm compiled here).
    pub devices: Vec<String>,
}

/// What a deploy or a rollout publishes: the module and its artifacts.
pub struct Release {
    pub spec: ModuleSpec,
    pub artifacts: Vec<Artifact>,
    /// The `.wasm` (or `.wat`) the artifacts were compiled from here, kept
    /// on the broker for `fleet rebuild`.
    pub source: Option<Vec<u8>>,
    pub chunk_len: u32,
}

impl Release {
    pub fn builds(&self) -> Vec<deploy::Build<'_>> {
        self.artifacts
            .iter()
            .map(|a| deploy::Build {
                fingerprint: a.fingerprint.clone(),
                artifact: &a.bytes,
                signature: Some(a.signature.clone()),
            })
            .collect()
    }
}

/// Reads the module's files; a `.wasm` is compiled for the engines the
/// targeted devices report, a `.cwasm` is taken as it is (signed with
/// --key unless --signature is given).
pub fn prepare(
    operator: &Operator,
    args: &ModuleArgs,
    signer: &Signer,
    target: &Target,
    json: bool,
) -> Result<Release, FleetError> {
    let artifact = std::fs::read(&args.artifact).map_err(|e| FleetError::File {
        path: args.artifact.display().to_string(),
        message: e.to_string(),
    })?;
    let component_toml = args.component.as_deref().map(read_text).transpose()?;
    let deployment_toml = read_text(&args.deployment)?;
    let id = module_id(component_toml.as_deref()).ok_or_else(|| FleetError::File {
        path: args
            .component
            .as_deref()
            .unwrap_or(Path::new("--component"))
            .display()
            .to_string(),
        message: "a readable component.toml is needed: its name is the module's id on the devices".into(),
    })?;
    let spec = ModuleSpec {
        id,
        component_toml,
        deployment_toml,
        run: !args.stopped,
    };
    let chunk_len = u32::try_from(args.chunk_size).unwrap_or(u32::MAX);
    let source = !matches!(
        arcella_core::artifact::InputKind::of(&artifact),
        arcella_core::artifact::InputKind::Artifact | arcella_core::artifact::InputKind::BareWasmtime
    );
    let (artifacts, source) = if source {
        let artifacts = compile_for_targets(operator, args, signer, target, &artifact, &spec, json)?;
        (artifacts, Some(artifact))
    } else {
        let sha256 = digest::sha256(&artifact);
        let signature = match &args.signature {
            Some(file) => signing::signature_from_text(&read_text(file)?).map_err(|e| FleetError::File {
                path: file.display().to_string(),
                message: e.to_string(),
            })?,
            None => signing::sign(&signer.key, &sha256),
        };
        let artifacts = vec![Artifact {
            fingerprint: None,
            sha256,
            bytes: artifact,
            signature,
            devices: Vec::new(),
        }];
        (artifacts, None)
    };
    Ok(Release {
        spec,
        artifacts,
        source,
        chunk_len,
    })
}

/// A `.wasm`: compiled once per engine the targeted devices report, each
/// artifact signed with --key.
#[cfg(feature = "compiler")]
fn compile_for_targets(
    operator: &Operator,
    args: &ModuleArgs,
    signer: &Signer,
    target: &Target,
    source: &[u8],
    spec: &ModuleSpec,
    json: bool,
) -> Result<Vec<Artifact>, FleetError> {
    let refused = |message: String| FleetError::File {
        path: args.artifact.display().to_string(),
        message,
    };
    if args.signature.is_some() {
        return Err(refused(
            "is a .wasm, compiled here once per engine, and each artifact is signed with --key: give no \
             --signature (or deploy a .cwasm signed on a build host)"
                .into(),
        ));
    }
    let fleet = operator.devices(Duration::from_millis(500))?;
    let devices = deploy::targets(&fleet, target);
    if devices.is_empty() {
        return Err(refused(
            "is a .wasm, compiled for the engines the targeted devices report, but no device of the target \
             has reported its state yet"
                .into(),
        ));
    }
    let fuel = arcella_core::manifest::parse_deployment(&spec.deployment_toml, "deployment.toml")
        .is_ok_and(|d| d.limits.fuel.is_some());
    let name = args
        .artifact
        .file_name()
        .map_or_else(|| "module.wasm".into(), |n| n.to_string_lossy().into_owned());
    let compiling = crate::progress::Elapsed::start(
        format!("compiling {name} ({})", crate::progress::size(source.len() as u64)),
        json,
    );
    let builds =
        super::fleet_build::build_for(source, &name, &fleet, &devices, fuel, args.boards_dir.as_deref(), false)
            .map_err(refused)?;
    compiling.finish(&format!("compiled {name}"));
    notes(&builds.skipped, json);
    if builds.artifacts.is_empty() {
        return Err(refused(
            "no targeted device has an engine this host can compile for (see above)".into(),
        ));
    }
    Ok(builds
        .artifacts
        .into_iter()
        .map(|(fingerprint, bytes, devices)| {
            let sha256 = digest::sha256(&bytes);
            Artifact {
                fingerprint: Some(fingerprint),
                signature: signing::sign(&signer.key, &sha256),
                sha256,
                bytes,
                devices,
            }
        })
        .collect())
}

#[cfg(not(feature = "compiler"))]
fn compile_for_targets(
    _: &Operator,
    args: &ModuleArgs,
    _: &Signer,
    _: &Target,
    _: &[u8],
    _: &ModuleSpec,
    _: bool,
) -> Result<Vec<Artifact>, FleetError> {
    Err(FleetError::File {
        path: args.artifact.display().to_string(),
        message: "is not an artifact, and this arcella has no compiler (a device build): compile it with \
                  `arcella compile --board NAME` on a build host, or deploy it from there"
            .into(),
    })
}

/// Lines about devices or modules left out, as text or JSON `skipped`.
#[cfg_attr(not(feature = "compiler"), allow(dead_code))]
pub fn notes(lines: &[String], json: bool) {
    for line in lines {
        if json {
            json_value(&Progress::Skipped { note: line.clone() });
        } else {
            outln!("{line}");
        }
    }
}

/// The module's id: component.toml's name.
fn module_id(component_toml: Option<&str>) -> Option<String> {
    arcella_core::manifest::parse_component(component_toml?, "component.toml")
        .ok()
        .map(|m| m.name)
}

fn undeploy_module(operator: &Operator, args: &UndeployArgs, json: bool) -> Result<(), FleetError> {
    let target = target(&args.target);
    let version = deploy::undeploy(operator, &signer(&args.signer)?, &target, &args.module)?;
    if json {
        json_value(&Progress::Published {
            version,
            artifact_sha256: None,
        });
    } else {
        outln!("published desired state version {version} without {}", args.module);
    }
    follow(operator, &target, version, args.target.timeout, json)
}

pub fn follow(
    operator: &Operator,
    target: &Target,
    version: u64,
    timeout: Duration,
    json: bool,
) -> Result<(), FleetError> {
    if json {
        return follow_json(operator, target, version, timeout);
    }
    let outcomes = deploy::await_convergence(operator, target, version, timeout, |id, outcome| match outcome {
        Outcome::Converged => outln!("{id}: healthy (version {version})"),
        Outcome::Failed(reasons) => outln!("{id}: FAILED: {}", reasons.join("; ")),
        Outcome::Offline => outln!("{id}: offline; converges when it is back"),
        Outcome::Pending(what) => outln!("{id}: {what}"),
    })?;
    let not_done: Vec<String> = outcomes
        .iter()
        .filter(|(_, o)| **o != Outcome::Converged)
        .map(|(id, o)| match o {
            Outcome::Failed(reasons) => format!("  {id}: failed: {}", reasons.join("; ")),
            Outcome::Offline => format!("  {id}: offline (not yet applied)"),
            Outcome::Pending(what) => format!("  {id}: no verdict by the deadline ({what})"),
            Outcome::Converged => String::new(),
        })
        .collect();
    if outcomes.is_empty() {
        outln!("no device is in the target (none has reported its group yet?)");
    }
    if !not_done.is_empty() {
        outln!("not healthy:\n{}", not_done.join("\n"));
    }
    let count = |f: fn(&Outcome) -> bool| outcomes.values().filter(|o| f(o)).count();
    outln!(
        "{} healthy, {} failed, {} offline, {} not done",
        count(|o| *o == Outcome::Converged),
        count(|o| matches!(o, Outcome::Failed(_))),
        count(|o| *o == Outcome::Offline),
        count(|o| matches!(o, Outcome::Pending(_)))
    );
    if deploy::all_converged(&outcomes) {
        Ok(())
    } else {
        Err(FleetError::NotConverged)
    }
}

/// [`follow`] as JSON lines: each verdict as it comes, then the summary.
fn follow_json(operator: &Operator, target: &Target, version: u64, timeout: Duration) -> Result<(), FleetError> {
    let device = |id: &str, outcome: &Outcome| {
        let (outcome, detail) = verdict(outcome);
        Progress::Device {
            device: id.to_owned(),
            outcome,
            detail,
        }
    };
    let outcomes = deploy::await_convergence(operator, target, version, timeout, |id, outcome| {
        json_value(&device(id, outcome));
    })?;
    let count = |f: fn(&Outcome) -> bool| outcomes.values().filter(|o| f(o)).count();
    json_value(&Progress::Summary {
        healthy: count(|o| *o == Outcome::Converged),
        failed: count(|o| matches!(o, Outcome::Failed(_))),
        offline: count(|o| *o == Outcome::Offline),
        pending: count(|o| matches!(o, Outcome::Pending(_))),
    });
    if deploy::all_converged(&outcomes) {
        Ok(())
    } else {
        Err(FleetError::NotConverged)
    }
}

/// Clears the chunks of artifacts no document refers to: every document
/// retained on the broker and every one a device reports it applied.
fn purge_artifacts(operator: &Operator, args: &PurgeArgs, json: bool) -> Result<(), FleetError> {
    let mut documents = operator.all_desired()?;
    documents.extend(operator.applied()?);
    let referenced: BTreeSet<[u8; 32]> = documents
        .iter()
        .filter_map(signing::document::read_unverified)
        .flat_map(|d| {
            d.modules
                .into_iter()
                .flat_map(|m| m.artifacts().map(|a| a.sha256).collect::<Vec<_>>())
        })
        .collect();
    let mut cleared = 0;
    for artifact in operator.artifacts()? {
        if referenced.contains(&artifact.sha256) {
            continue;
        }
        let hex = digest::hex(&artifact.sha256);
        if !args.dry_run {
            operator.purge_artifact(&artifact)?;
        }
        cleared += 1;
        if json {
            json_value(&Progress::Artifact {
                sha256: hex,
                bytes: artifact.len,
                chunks: artifact.chunks(),
                cleared: !args.dry_run,
            });
            continue;
        }
        if args.dry_run {
            outln!(
                "would clear {hex} ({} bytes, {} chunks)",
                artifact.len,
                artifact.chunks()
            );
        } else {
            outln!("cleared {hex} ({} bytes, {} chunks)", artifact.len, artifact.chunks());
        }
    }
    if json {
        json_value(&Progress::Purged {
            unreferenced: cleared,
            referenced: referenced.len(),
        });
        return Ok(());
    }
    outln!(
        "{cleared} artifact(s) {}; {} referenced kept",
        if args.dry_run { "unreferenced" } else { "cleared" },
        referenced.len()
    );
    Ok(())
}
