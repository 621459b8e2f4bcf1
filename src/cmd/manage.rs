//! The verbs that talk to the daemon over its socket.

use crate::cli::{Command, ConnectArgs, InstallArgs, LogsArgs};
use crate::cmd::overlap::Overlap;
use crate::cmd::{json, level, render};
use crate::exit::Failure;
use crate::output::outln;
use crate::progress::Progress;
use arcella_core::client::{Client, ClientError};
use arcella_core::daemon::paths::Defaults;
use arcella_core::digest::Sha256Digest;
use arcella_core::manifest::{COMPONENT_FILE, DEPLOYMENT_FILE};
use arcella_core::protocol::{ErrorKind, Event, InstallSpec, RemoteError, Request, Response};
#[cfg(feature = "mqtt")]
use arcella_mqtt::operator::Operator;
use std::path::{Path, PathBuf};
#[cfg(feature = "mqtt")]
use std::time::Duration;

/// Errors of the management verbs.
#[derive(Debug, thiserror::Error)]
pub enum ManageError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("{0}")]
    Broker(String),
    #[cfg(feature = "mqtt")]
    #[error("following logs needs the local socket; over MQTT, read the device's events topic")]
    FollowRemote,
    #[error("{path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A manifest refused here, before anything is uploaded.
    #[error(transparent)]
    Manifest(#[from] arcella_core::manifest::ManifestError),
    /// An argument clap accepted but the verb cannot use (exit 2).
    #[error("{0}")]
    Usage(String),
}

impl From<ManageError> for Failure {
    fn from(err: ManageError) -> Self {
        if let ManageError::Usage(_) = &err {
            return Failure::with_code(crate::exit::USAGE, "usage", err);
        }
        let kind = match &err {
            ManageError::Client(ClientError::Remote(remote)) => json::error_kind(remote.kind),
            ManageError::Client(ClientError::Connect { .. }) | ManageError::Broker(_) => "unreachable",
            ManageError::Client(_) => "connection",
            #[cfg(feature = "mqtt")]
            ManageError::FollowRemote => "unsupported",
            ManageError::Read { .. } => "io",
            ManageError::Manifest(_) => "invalid_manifest",
            ManageError::Usage(_) => "usage",
        };
        Failure::new(kind, err)
    }
}

fn read(path: &Path) -> Result<Vec<u8>, ManageError> {
    std::fs::read(path).map_err(|source| ManageError::Read {
        path: path.display().to_string(),
        source,
    })
}

fn read_text(path: &Path) -> Result<String, ManageError> {
    std::fs::read_to_string(path).map_err(|source| ManageError::Read {
        path: path.display().to_string(),
        source,
    })
}

/// How the verbs reach the daemon.
#[derive(Debug, Clone)]
pub enum Via {
    Socket(Option<PathBuf>),
    /// Through an MQTT broker to one device.
    Broker {
        url: String,
        device: String,
        /// Signs requests and artifacts (`--key`).
        #[cfg_attr(not(feature = "mqtt"), allow(dead_code))]
        key: Option<PathBuf>,
    },
}

impl Via {
    pub fn from_args(args: &ConnectArgs) -> Self {
        match (&args.broker, &args.device) {
            (Some(url), Some(device)) => Via::Broker {
                url: url.clone(),
                device: device.clone(),
                key: args.operator_key.clone(),
            },
            _ => Via::Socket(args.socket.clone()),
        }
    }
}

/// A connection to one daemon, local or remote.
pub(crate) enum Link {
    Socket(Client),
    #[cfg(feature = "mqtt")]
    Broker {
        operator: Operator,
        device: String,
    },
}

/// How long a remote device gets to answer one request.
#[cfg(feature = "mqtt")]
const REMOTE_TIMEOUT: Duration = Duration::from_secs(60);

impl Link {
    pub(crate) fn open(via: &Via) -> Result<Self, ManageError> {
        match via {
            Via::Socket(socket) => {
                let socket = socket.clone().unwrap_or_else(|| Defaults::for_this_user().socket);
                Ok(Link::Socket(Client::connect(
                    &socket,
                    concat!("arcella-cli ", env!("CARGO_PKG_VERSION")),
                )?))
            }
            #[cfg(not(feature = "mqtt"))]
            Via::Broker { url, device, .. } => Err(ManageError::Broker(format!(
                "cannot reach `{device}` through {url}: {}; manage the device over its local socket, or use a \
                 build with MQTT (the packaged one has it)",
                crate::cmd::WITHOUT_MQTT
            ))),
            #[cfg(feature = "mqtt")]
            Via::Broker { url, device, key } => {
                let key = key
                    .as_deref()
                    .map(crate::cmd::fleet::read_key)
                    .transpose()
                    .map_err(|e| ManageError::Broker(e.to_string()))?;
                let mut operator =
                    crate::cmd::fleet::connect(url, "cli").map_err(|e| ManageError::Broker(e.to_string()))?;
                if let Some(key) = key {
                    operator.sign_with(key);
                }
                // Say at once that nobody will answer, rather than time out.
                let presence = arcella_mqtt::topics::DeviceTopics::new(device)
                    .map_err(|e| ManageError::Broker(e.to_string()))?
                    .presence();
                let seen = operator
                    .retained(&presence, Duration::from_millis(300))
                    .map_err(|e| ManageError::Broker(e.to_string()))?;
                match seen.last().map(|(_, p)| p.as_slice()) {
                    Some(b"online") => {}
                    Some(_) => return Err(ManageError::Broker(format!("device `{device}` is offline"))),
                    None => {
                        return Err(ManageError::Broker(format!(
                            "no device `{device}` has ever announced itself on {url}"
                        )));
                    }
                }
                Ok(Link::Broker {
                    operator,
                    device: device.clone(),
                })
            }
        }
    }

    pub(crate) fn call(&mut self, request: Request) -> Result<Response, ManageError> {
        match self {
            Link::Socket(client) => Ok(client.call(request)?),
            #[cfg(feature = "mqtt")]
            Link::Broker { operator, device } => {
                // An install or update carries its artifact's signature.
                let artifact_signature = match &request {
                    Request::Install(spec) | Request::Update { spec, .. } => operator.sign_artifact(&spec.upload),
                    _ => None,
                };
                operator
                    .call_with(device, request, artifact_signature, REMOTE_TIMEOUT)
                    .map_err(|e| ManageError::Broker(e.to_string()))
            }
        }
    }

    /// Uploads `bytes`, with a progress line named `name` on a terminal
    /// (the bytes the daemon says it has received).
    fn upload(&mut self, bytes: &[u8], name: &str, json: bool) -> Result<Sha256Digest, ManageError> {
        let mut progress = Progress::bytes(
            format!("uploading {name}"),
            format!("uploaded {name}"),
            bytes.len() as u64,
            json,
        );
        let sha256 = arcella_core::client::upload_with(bytes, |request| {
            let response = self.call(request)?;
            if let Response::Uploaded { received, complete } = &response {
                progress.update(if *complete { bytes.len() as u64 } else { *received });
            }
            Ok::<_, ManageError>(response)
        })?;
        progress.finish();
        Ok(sha256)
    }
}

/// Runs one management verb against a daemon.
pub fn execute(command: &Command, via: &Via, json: bool) -> Result<(), ManageError> {
    if let Command::Install(args) = command {
        check_manifests(args.component.as_deref(), Some(&args.deployment))?;
    }
    if let Command::Update(args) = command {
        check_manifests(args.component.as_deref(), args.deployment.as_deref())?;
    }
    let mut client = Link::open(via)?;
    let request = match command {
        Command::Install(args) => return install(&mut client, args, json),
        Command::Update(args) => Request::Update {
            module: args.module.clone(),
            spec: upload_spec(
                &mut client,
                &args.artifact,
                args.component.as_deref(),
                args.deployment.as_deref(),
                json,
            )?,
        },
        Command::Rollback(m) => Request::Rollback {
            module: m.module.clone(),
        },
        Command::Gc(_) => Request::Gc,
        Command::Start(m) => Request::Start {
            module: m.module.clone(),
        },
        Command::Stop(m) => Request::Stop {
            module: m.module.clone(),
        },
        Command::Restart(m) => Request::Restart {
            module: m.module.clone(),
        },
        Command::Remove(m) if m.purge_state => Request::RemovePurgingState {
            module: m.target.module.clone(),
        },
        Command::Remove(m) => Request::Remove {
            module: m.target.module.clone(),
        },
        Command::List(_) => Request::List,
        Command::Status(m) => Request::Status {
            module: m.module.clone(),
        },
        Command::Info(_) => Request::Info,
        Command::Wiring(_) => Request::Wiring,
        Command::Telemetry(_) => Request::Telemetry,
        Command::Logs(args) => return logs(&mut client, args, json),
        Command::Audit(args) => super::audit::request(args),
        Command::Config(args) => return crate::cmd::config::execute(&mut client, args, json),
        Command::Inspect(args) => Request::Inspect {
            module: args.target.display().to_string(),
        },
        // The offline verbs (compile, run, daemon, …) are dispatched in main.rs.
        _ => return Ok(()),
    };
    let updated = matches!(command, Command::Update(_));
    let manifests = match command {
        Command::Update(args) => Manifests::named(args.component.as_deref(), args.deployment.as_deref()),
        _ => Manifests::default(),
    };
    let response = client.call(request).map_err(|e| manifests.rename(e))?;
    render::response(&response, json);
    if updated {
        health_window_note(&mut client, &response, json);
    }
    Ok(())
}

/// `install`, or with `--replace` an update of the module the manifests
/// name when it is installed already.
fn install(client: &mut Link, args: &InstallArgs, json: bool) -> Result<(), ManageError> {
    let manifests = Manifests::named(args.component.as_deref(), Some(&args.deployment));
    let spec = upload_spec(
        client,
        &args.artifact,
        args.component.as_deref(),
        Some(&args.deployment),
        json,
    )?;
    let existing = match args.replace {
        true => installed_id(client, args)?,
        false => None,
    };
    let updated = existing.is_some();
    let request = match existing {
        Some(module) => Request::Update { module, spec },
        None => Request::Install(spec),
    };
    let response = client.call(request).map_err(|e| manifests.rename(e))?;
    render::response(&response, json);
    if updated {
        health_window_note(client, &response, json);
    }
    Ok(())
}

/// After an update the new version "is running" only so far: while its
/// health window lasts it may still fail and roll back. Says so, with how
/// long and how to find out, instead of letting "running" read as final.
/// (`--json` callers read `update_outcome` from `status`.)
fn health_window_note(client: &mut Link, response: &Response, json: bool) {
    let Response::Module(module) = response else { return };
    if json {
        return;
    }
    let Ok(Response::Status(status)) = client.call(Request::Status {
        module: module.id.clone(),
    }) else {
        return;
    };
    if let Some(note) = render::health_window_note(&status) {
        outln!("{note}");
    }
}

/// The id the daemon will give this install, if a module with that id is
/// installed: component.toml's name, else the id derived from the
/// artifact's source name (docs/manifests.md, "Identity").
fn installed_id(client: &mut Link, args: &InstallArgs) -> Result<Option<String>, ManageError> {
    let id = match &args.component {
        Some(path) => arcella_core::manifest::parse_component(&read_text(path)?, &path.display().to_string())?.name,
        None => arcella_core::manifest::derive_id(&source_name(&read(&args.artifact)?)),
    };
    match client.call(Request::Status { module: id.clone() }) {
        Ok(_) => Ok(Some(id)),
        Err(ManageError::Client(ClientError::Remote(e))) if e.kind == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The name a daemon compiles from: an artifact's recorded source name;
/// a `.wasm` it compiles itself is `module.wasm`.
fn source_name(bytes: &[u8]) -> String {
    arcella_core::artifact::format::decode(bytes).map_or_else(|_| "module.wasm".into(), |a| a.header.source_name)
}

/// Parses the manifests given here, so that a mistake names the file as
/// the user named it, before anything is uploaded. (The daemon checks them
/// again, with the artifact.)
fn check_manifests(component: Option<&Path>, deployment: Option<&Path>) -> Result<(), ManageError> {
    if let Some(path) = component {
        arcella_core::manifest::parse_component(&read_text(path)?, &path.display().to_string())?;
    }
    if let Some(path) = deployment {
        arcella_core::manifest::parse_deployment(&read_text(path)?, &path.display().to_string())?;
    }
    Ok(())
}

/// The manifest files given, to name them in the daemon's errors (which
/// only knows them as `component.toml` and `deployment.toml`).
#[derive(Debug, Default)]
struct Manifests {
    component: Option<String>,
    deployment: Option<String>,
}

impl Manifests {
    fn named(component: Option<&Path>, deployment: Option<&Path>) -> Self {
        Self {
            component: component.map(|p| p.display().to_string()),
            deployment: deployment.map(|p| p.display().to_string()),
        }
    }

    /// A refused manifest's error with the real file names.
    fn rename(&self, err: ManageError) -> ManageError {
        let ManageError::Client(ClientError::Remote(remote)) = err else {
            return err;
        };
        if remote.kind != ErrorKind::InvalidManifest {
            return ManageError::Client(ClientError::Remote(remote));
        }
        let mut message = remote.message;
        for (usual, given) in [(COMPONENT_FILE, &self.component), (DEPLOYMENT_FILE, &self.deployment)] {
            if let Some(given) = given {
                message = message.replace(&format!("{usual}:"), &format!("{given}:"));
            }
        }
        ManageError::Client(ClientError::Remote(RemoteError::new(remote.kind, message)))
    }
}

fn upload_spec(
    client: &mut Link,
    artifact: &Path,
    component: Option<&Path>,
    deployment: Option<&Path>,
    json: bool,
) -> Result<InstallSpec, ManageError> {
    let name = super::file_label(artifact);
    let artifact = read(artifact)?;
    let deployment_toml = deployment.map(read_text).transpose()?;
    let component_toml = component.map(read_text).transpose()?;
    let upload = client.upload(&artifact, &name, json)?;
    Ok(InstallSpec {
        upload,
        component_toml,
        deployment_toml,
    })
}

fn logs(link: &mut Link, args: &LogsArgs, json: bool) -> Result<(), ManageError> {
    // `--level` filters here, so `--tail N` counts the lines shown: ask
    // for every line kept, then keep the last N that pass.
    let request = Request::Logs {
        module: args.module.clone(),
        tail: if args.level.is_some() {
            0
        } else {
            args.tail.unwrap_or(0)
        },
    };
    let shown = |response: Response| match response {
        Response::Logs(mut lines) => {
            lines.retain(|l| level::shown(l, args.level));
            let tail = args.tail.unwrap_or(0) as usize;
            if tail > 0 && lines.len() > tail {
                lines.drain(..lines.len() - tail);
            }
            Response::Logs(lines)
        }
        other => other,
    };
    #[cfg_attr(not(feature = "mqtt"), allow(clippy::infallible_destructuring_match))]
    let client = match link {
        Link::Socket(client) => client,
        #[cfg(feature = "mqtt")]
        Link::Broker { .. } if args.follow => return Err(ManageError::FollowRemote),
        #[cfg(feature = "mqtt")]
        Link::Broker { .. } => {
            render::response(&shown(link.call(request)?), json);
            return Ok(());
        }
    };
    let since_ms = arcella_core::protocol::now_ms();
    if args.follow {
        client.call(Request::Follow {
            module: Some(args.module.clone()),
        })?;
    }
    let kept = shown(client.call(request)?);
    render::response(&kept, json);
    if !args.follow {
        return Ok(());
    }
    let mut overlap = match &kept {
        Response::Logs(lines) => Overlap::new(lines, since_ms),
        _ => Overlap::new(&[], since_ms),
    };
    loop {
        match client.next_event()? {
            Event::Log(line) if !level::shown(&line, args.level) || overlap.repeats(&line) => {}
            event if json => render::json_value(&json::Event::from(&event)),
            Event::Log(line) => render::log_line(&line),
            Event::State { module, state } => outln!("[{module} is now {}]", render::state(&state)),
        }
    }
}
