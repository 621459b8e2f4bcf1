//! `arcella daemon [--config FILE] [--data-dir DIR] [--socket PATH]`

use crate::cli::DaemonArgs;
use arcella_core::daemon::config::{ConfigError, DaemonConfig};
use arcella_core::daemon::paths::Defaults;
use arcella_core::daemon::{self, DaemonError};
use std::path::PathBuf;

/// Why the daemon did not run.
#[derive(Debug, thiserror::Error)]
pub enum DaemonCmdError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Daemon(#[from] DaemonError),
    #[error(transparent)]
    Engine(#[from] arcella_core::engine::EngineError),
}

/// `--check`: the configuration is valid and wasmtime accepts its engine.
fn check(config: &DaemonConfig) -> Result<(), DaemonCmdError> {
    arcella_core::engine::new_engine(&config.engine)?;
    println!("configuration ok");
    println!("board:       {}", config.board);
    println!("engine:      {}", arcella_core::EngineFingerprint::of(&config.engine));
    println!("data dir:    {}", config.data_dir.display());
    println!("socket:      {}", config.socket.display());
    Ok(())
}

pub fn execute(args: &DaemonArgs, socket: Option<PathBuf>) -> Result<(), DaemonCmdError> {
    let mut config = match &args.config {
        Some(file) => DaemonConfig::load(file, true)?,
        None => DaemonConfig::load(&Defaults::for_this_user().config, false)?,
    };
    if let Some(dir) = &args.data_dir {
        config.data_dir = dir.clone();
    }
    if let Some(socket) = socket {
        config.socket = socket;
    }
    config.validate("the command line")?;
    if args.check {
        return check(&config);
    }
    crate::logging::init(&config.log_level);
    let Some(mqtt) = config.mqtt.clone() else {
        daemon::run(config)?;
        return Ok(());
    };
    let agent_config = arcella_mqtt::agent::AgentConfig {
        host: mqtt.host,
        port: mqtt.port,
        device: mqtt.device,
    };
    daemon::run_with(
        config,
        Box::new(move |supervisor| {
            let reporter = supervisor.follow(None).ok().map(|events| {
                let source = supervisor.clone();
                arcella_mqtt::agent::Reporter {
                    report: Box::new(move || source.report()),
                    events,
                }
            });
            let handler: arcella_mqtt::agent::Handler =
                std::sync::Arc::new(move |request| daemon::remote::answer(&supervisor, request));
            match arcella_mqtt::agent::Agent::spawn(agent_config, handler, reporter) {
                // The agent thread lives as long as the process.
                Ok(agent) => std::mem::forget(agent),
                Err(e) => log::error!("MQTT management is off: {e}"),
            }
        }),
    )?;
    Ok(())
}
