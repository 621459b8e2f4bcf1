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
    crate::logging::init(&config.log_level);
    let Some(mqtt) = config.mqtt.clone() else {
        daemon::run(config)?;
        return Ok(());
    };
    let trust = mqtt.trust_policy().map_err(|e| ConfigError::Invalid {
        file: "the configuration".into(),
        key: "mqtt.trusted_keys",
        message: e.to_string(),
    })?;
    let agent_config = arcella_mqtt::agent::AgentConfig {
        host: mqtt.host,
        port: mqtt.port,
        device: mqtt.device,
        fleet: arcella_mqtt::reconcile::FleetSettings {
            group: mqtt.group,
            trust,
        },
    };
    daemon::run_with(
        config,
        Box::new(move |supervisor| {
            let device: std::sync::Arc<dyn arcella_mqtt::device::Device> = std::sync::Arc::new(supervisor);
            match arcella_mqtt::agent::Agent::spawn(agent_config, device) {
                // The agent's threads live as long as the process.
                Ok(agent) => std::mem::forget(agent),
                Err(e) => log::error!("MQTT management is off: {e}"),
            }
        }),
    )?;
    Ok(())
}
