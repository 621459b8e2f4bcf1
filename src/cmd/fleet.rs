//! `arcella fleet`: the devices behind a broker, deploy and undeploy.

use crate::cli::{DeployArgs, FleetArgs, FleetVerb, PurgeArgs, SignerArgs, TargetArgs, UndeployArgs};
use arcella_core::digest;
use arcella_core::signing;
use arcella_mqtt::broker::{BrokerError, BrokerSettings};
use arcella_mqtt::deploy::{self, ModuleSpec, Outcome, Signer};
use arcella_mqtt::operator::{Operator, OperatorError, Target};
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
}

/// The secret key in `path`.
pub fn read_key(path: &Path) -> Result<ed25519_dalek::SigningKey, FleetError> {
    signing::secret_from_text(&read_text(path)?).map_err(|e| FleetError::File {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

fn signer(args: &SignerArgs) -> Result<Signer, FleetError> {
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
    let options = settings.options()?;
    Ok(Operator::connect(options, name)?)
}

fn read_text(path: &Path) -> Result<String, FleetError> {
    std::fs::read_to_string(path).map_err(|e| FleetError::File {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

pub fn execute(args: &FleetArgs) -> Result<(), FleetError> {
    let operator = connect(&args.broker, &args.client)?;
    match &args.verb {
        FleetVerb::Devices => devices(&operator),
        FleetVerb::Deploy(deploy) => deploy_module(&operator, deploy),
        FleetVerb::Undeploy(undeploy) => undeploy_module(&operator, undeploy),
        FleetVerb::Purge(purge) => purge_artifacts(&operator, purge),
    }
}

fn devices(operator: &Operator) -> Result<(), FleetError> {
    let fleet = operator.devices(Duration::from_millis(500))?;
    println!(
        "{:<20} {:<8} {:<8} {:<12} {:<8} {:>7}  desired",
        "DEVICE", "PRESENCE", "VERSION", "BOARD", "GROUP", "MODULES"
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
                format!(
                    "{:?} (group v{}, device v{})",
                    c.phase,
                    c.group_document.map_or("-".into(), |d| d.version.to_string()),
                    c.device_document.map_or("-".into(), |d| d.version.to_string())
                )
            },
        );
        let presence = if view.online { "online" } else { "offline" };
        println!("{id:<20} {presence:<8} {version:<8} {board:<12} {group:<8} {modules:>7}  {desired}");
    }
    Ok(())
}

fn target(args: &TargetArgs) -> Target {
    match (&args.device, &args.group) {
        (Some(device), _) => Target::Device(device.clone()),
        (None, Some(group)) => Target::Group(group.clone()),
        // clap requires one of the two.
        (None, None) => Target::Device(String::new()),
    }
}

fn deploy_module(operator: &Operator, args: &DeployArgs) -> Result<(), FleetError> {
    let artifact = std::fs::read(&args.artifact).map_err(|e| FleetError::File {
        path: args.artifact.display().to_string(),
        message: e.to_string(),
    })?;
    let sha256 = digest::sha256(&artifact);
    let signer = signer(&args.signer)?;
    let signature = match &args.signature {
        Some(file) => signing::signature_from_text(&read_text(file)?).map_err(|e| FleetError::File {
            path: file.display().to_string(),
            message: e.to_string(),
        })?,
        None => signing::sign(&signer.key, &sha256),
    };
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
    let target = target(&args.target);
    let chunk_len = u32::try_from(args.chunk_size).unwrap_or(u32::MAX);
    let spec = ModuleSpec {
        id,
        component_toml,
        deployment_toml,
        run: !args.stopped,
    };
    let version = deploy::deploy(operator, &signer, &target, &artifact, chunk_len, Some(signature), spec)?;
    println!(
        "published artifact {} and desired state version {version}",
        digest::hex(&sha256)
    );
    follow(operator, &target, version, args.target.timeout)
}

/// The module's id: component.toml's name.
fn module_id(component_toml: Option<&str>) -> Option<String> {
    arcella_core::manifest::parse_component(component_toml?, "component.toml")
        .ok()
        .map(|m| m.name)
}

fn undeploy_module(operator: &Operator, args: &UndeployArgs) -> Result<(), FleetError> {
    let target = target(&args.target);
    let version = deploy::undeploy(operator, &signer(&args.signer)?, &target, &args.module)?;
    println!("published desired state version {version} without {}", args.module);
    follow(operator, &target, version, args.target.timeout)
}

fn follow(operator: &Operator, target: &Target, version: u64, timeout: Duration) -> Result<(), FleetError> {
    let outcomes = deploy::await_convergence(operator, target, version, timeout, |id, outcome| match outcome {
        Outcome::Converged => println!("{id}: healthy (version {version})"),
        Outcome::Failed(reasons) => println!("{id}: FAILED: {}", reasons.join("; ")),
        Outcome::Offline => println!("{id}: offline; converges when it is back"),
        Outcome::Pending(what) => println!("{id}: {what}"),
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
        println!("no device is in the target (none has reported its group yet?)");
    }
    if !not_done.is_empty() {
        println!("not healthy:\n{}", not_done.join("\n"));
    }
    let count = |f: fn(&Outcome) -> bool| outcomes.values().filter(|o| f(o)).count();
    println!(
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

/// Clears the chunks of artifacts no document refers to: every document
/// retained on the broker and every one a device reports it applied.
fn purge_artifacts(operator: &Operator, args: &PurgeArgs) -> Result<(), FleetError> {
    let mut documents = operator.all_desired()?;
    documents.extend(operator.applied()?);
    let referenced: BTreeSet<[u8; 32]> = documents
        .iter()
        .filter_map(signing::document::read_unverified)
        .flat_map(|d| d.modules.into_iter().map(|m| m.artifact.sha256))
        .collect();
    let mut cleared = 0;
    for artifact in operator.artifacts()? {
        if referenced.contains(&artifact.sha256) {
            continue;
        }
        let hex = digest::hex(&artifact.sha256);
        if args.dry_run {
            println!(
                "would clear {hex} ({} bytes, {} chunks)",
                artifact.len,
                artifact.chunks()
            );
        } else {
            operator.purge_artifact(&artifact)?;
            println!("cleared {hex} ({} bytes, {} chunks)", artifact.len, artifact.chunks());
        }
        cleared += 1;
    }
    println!(
        "{cleared} artifact(s) {}; {} referenced kept",
        if args.dry_run { "unreferenced" } else { "cleared" },
        referenced.len()
    );
    Ok(())
}
