//! The verbs that talk to the daemon over its socket.

use crate::cli::{Command, LogsArgs};
use crate::cmd::render;
use arcella_core::client::{Client, ClientError};
use arcella_core::daemon::paths::Defaults;
use arcella_core::protocol::{Event, InstallSpec, Request};
use std::path::{Path, PathBuf};

/// Errors of the management verbs.
#[derive(Debug, thiserror::Error)]
pub enum ManageError {
    #[error(transparent)]
    Client(#[from] ClientError),
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

/// Runs one management verb against the daemon at `socket`.
pub fn execute(command: &Command, socket: Option<PathBuf>, json: bool) -> Result<(), ManageError> {
    let socket = socket.unwrap_or_else(|| Defaults::for_this_user().socket);
    let mut client = Client::connect(&socket, concat!("arcella-cli ", env!("CARGO_PKG_VERSION")))?;
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
    client: &mut Client,
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

fn logs(client: &mut Client, args: &LogsArgs, json: bool) -> Result<(), ManageError> {
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
