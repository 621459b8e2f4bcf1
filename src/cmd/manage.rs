//! The verbs that talk to the daemon over its socket.

use crate::cli::{Command, LogsArgs};
use crate::cmd::render;
use arcella_core::client::{Client, ClientError};
use arcella_core::daemon::paths::Defaults;
use arcella_core::digest::Sha256Digest;
use arcella_core::protocol::{Event, InstallSpec, Request, Response};
use arcella_mqtt::operator::Operator;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Errors of the management verbs.
#[derive(Debug, thiserror::Error)]
pub enum ManageError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("{0}")]
    Broker(String),
    #[error("following logs needs the local socket; over MQTT, read the device's events topic")]
    FollowRemote,
    #[error("{path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
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
        key: Option<PathBuf>,
    },
}

impl Via {
    pub fn from_cli(cli: &crate::cli::Cli) -> Self {
        match (&cli.broker, &cli.device) {
            (Some(url), Some(device)) => Via::Broker {
                url: url.clone(),
                device: device.clone(),
                key: cli.operator_key.clone(),
            },
            _ => Via::Socket(cli.socket.clone()),
        }
    }
}

/// A connection to one daemon, local or remote.
enum Link {
    Socket(Client),
    Broker { operator: Operator, device: String },
}

/// How long a remote device gets to answer one request.
const REMOTE_TIMEOUT: Duration = Duration::from_secs(60);

impl Link {
    fn open(via: &Via) -> Result<Self, ManageError> {
        match via {
            Via::Socket(socket) => {
                let socket = socket.clone().unwrap_or_else(|| Defaults::for_this_user().socket);
                Ok(Link::Socket(Client::connect(
                    &socket,
                    concat!("arcella-cli ", env!("CARGO_PKG_VERSION")),
                )?))
            }
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

    fn call(&mut self, request: Request) -> Result<Response, ManageError> {
        match self {
            Link::Socket(client) => Ok(client.call(request)?),
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

    fn upload(&mut self, bytes: &[u8]) -> Result<Sha256Digest, ManageError> {
        arcella_core::client::upload_with(bytes, |request| self.call(request))
    }
}

/// Runs one management verb against a daemon.
pub fn execute(command: &Command, via: &Via, json: bool) -> Result<(), ManageError> {
    let mut client = Link::open(via)?;
    let request = match command {
        Command::Install(args) => Request::Install(upload_spec(
            &mut client,
            &args.artifact,
            args.component.as_deref(),
            Some(&args.deployment),
        )?),
        Command::Update(args) => Request::Update {
            module: args.module.clone(),
            spec: upload_spec(
                &mut client,
                &args.artifact,
                args.component.as_deref(),
                args.deployment.as_deref(),
            )?,
        },
        Command::Rollback(m) => Request::Rollback {
            module: m.module.clone(),
        },
        Command::Gc => Request::Gc,
        Command::Start(m) => Request::Start {
            module: m.module.clone(),
        },
        Command::Stop(m) => Request::Stop {
            module: m.module.clone(),
        },
        Command::Restart(m) => Request::Restart {
            module: m.module.clone(),
        },
        Command::Remove(m) => Request::Remove {
            module: m.module.clone(),
        },
        Command::List => Request::List,
        Command::Status(m) => Request::Status {
            module: m.module.clone(),
        },
        Command::Info => Request::Info,
        Command::Logs(args) => return logs(&mut client, args, json),
        Command::Inspect(args) => Request::Inspect {
            module: args.target.display().to_string(),
        },
        // The offline verbs (compile, run, daemon) are dispatched in main.rs.
        _ => return Ok(()),
    };
    let response = client.call(request)?;
    render::response(&response, json);
    Ok(())
}

fn upload_spec(
    client: &mut Link,
    artifact: &Path,
    component: Option<&Path>,
    deployment: Option<&Path>,
) -> Result<InstallSpec, ManageError> {
    let artifact = read(artifact)?;
    let deployment_toml = deployment.map(read_text).transpose()?;
    let component_toml = component.map(read_text).transpose()?;
    let upload = client.upload(&artifact)?;
    Ok(InstallSpec {
        upload,
        component_toml,
        deployment_toml,
    })
}

fn logs(link: &mut Link, args: &LogsArgs, json: bool) -> Result<(), ManageError> {
    let client = match link {
        Link::Socket(client) => client,
        Link::Broker { .. } if args.follow => return Err(ManageError::FollowRemote),
        Link::Broker { .. } => {
            let response = link.call(Request::Logs {
                module: args.module.clone(),
                tail: args.tail,
            })?;
            render::response(&response, json);
            return Ok(());
        }
    };
    if args.follow {
        client.call(Request::Follow {
            module: Some(args.module.clone()),
        })?;
    }
    let response = client.call(Request::Logs {
        module: args.module.clone(),
        tail: args.tail,
    })?;
    render::response(&response, json);
    if !args.follow {
        return Ok(());
    }
    loop {
        match client.next_event()? {
            Event::Log(line) if render::json_line(json, &line) => {}
            Event::Log(line) => render::log_line(&line),
            Event::State { module, state } if !json => println!("[{module} is now {}]", render::state(&state)),
            event => render::json_value(&event),
        }
    }
}
