//! `arcella daemon [--config FILE] [--data-dir DIR] [--socket PATH]`

use crate::cli::DaemonArgs;
use crate::exit::Failure;
use crate::output::outln;
#[cfg(feature = "mqtt")]
use arcella_core::daemon::config::MqttSettings;
#[cfg(feature = "mqtt")]
use arcella_core::daemon::config::mqtt::PasswordFileError;
use arcella_core::daemon::config::{ConfigError, DaemonConfig};
use arcella_core::daemon::paths::Defaults;
use arcella_core::daemon::{self, DaemonError};
#[cfg(feature = "mqtt")]
use arcella_mqtt::agent::AgentConfig;
#[cfg(feature = "mqtt")]
use arcella_mqtt::broker::{BrokerError, BrokerSettings};
use std::path::PathBuf;

/// Why the daemon did not run.
#[derive(Debug, thiserror::Error)]
pub enum DaemonCmdError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Daemon(#[from] DaemonError),
    #[cfg(feature = "mqtt")]
    #[error(transparent)]
    MqttPassword(#[from] PasswordFileError),
    #[cfg(feature = "mqtt")]
    #[error("[mqtt] {0}")]
    Mqtt(#[from] BrokerError),
    #[error(transparent)]
    Engine(#[from] arcella_core::engine::EngineError),
    #[cfg(feature = "mqtt")]
    #[error(transparent)]
    Bridge(#[from] arcella_mqtt::bridge::BridgeError),
    /// `[mqtt]` or `[bridge]` in the configuration of a build without MQTT.
    #[cfg(not(feature = "mqtt"))]
    #[error("the configuration has [{0}], but {without}: remove [mqtt] and [bridge] from it, or install a build with MQTT (the packaged one has it)", without = crate::cmd::WITHOUT_MQTT)]
    WithoutMqtt(&'static str),
}

impl From<DaemonCmdError> for Failure {
    fn from(err: DaemonCmdError) -> Self {
        let kind = match &err {
            DaemonCmdError::Daemon(_) => "daemon",
            _ => "config",
        };
        Failure::new(kind, err)
    }
}

/// What `daemon --check --json` prints.
#[derive(Debug, serde::Serialize)]
struct Checked {
    board: String,
    engine: String,
    /// The fingerprint of the same engine with fuel metering.
    engine_with_fuel: String,
    data_dir: String,
    socket: String,
}

/// `--check`: the configuration is valid and wasmtime accepts its engine.
fn check(config: &DaemonConfig, json: bool) -> Result<(), DaemonCmdError> {
    let engines = arcella_core::engine::EngineSet::new(&config.engine)?;
    config
        .engine
        .check_address_space(arcella_core::sys::memory::address_space_limit())?;
    daemon::socket_group(&config.access)?;
    #[cfg(feature = "mqtt")]
    {
        if let Some(mqtt) = &config.mqtt {
            agent_config(mqtt)?;
        }
        bridge_config(config)?;
    }
    let [plain, metered] = engines.fingerprints();
    if json {
        crate::cmd::render::json_value(&Checked {
            board: config.board.clone(),
            engine: plain.to_string(),
            engine_with_fuel: metered.to_string(),
            data_dir: config.data_dir.display().to_string(),
            socket: config.socket.display().to_string(),
        });
        return Ok(());
    }
    outln!("configuration ok");
    outln!("board:       {}", config.board);
    outln!("engine:      {plain}, with fuel metering {metered}");
    outln!("             ({})", engines.profile(false).instrumentation());
    outln!("data dir:    {}", config.data_dir.display());
    outln!("socket:      {}", config.socket.display());
    Ok(())
}

/// `socket`: `--socket` given before the verb, as older releases took it.
pub fn execute(args: &DaemonArgs, socket: Option<PathBuf>, json: bool) -> Result<(), DaemonCmdError> {
    let mut config = match &args.config {
        Some(file) => DaemonConfig::load(file, true)?,
        None => DaemonConfig::load(&Defaults::for_this_user().config, false)?,
    };
    if let Some(dir) = &args.data_dir {
        config.data_dir = dir.clone();
    }
    if let Some(socket) = args.socket.clone().or(socket) {
        config.socket = socket;
    }
    config.validate("the command line")?;
    #[cfg(not(feature = "mqtt"))]
    without_mqtt(&config)?;
    if args.check {
        return check(&config, json);
    }
    crate::logging::init(&config.log_level);
    #[cfg(feature = "mqtt")]
    if config.mqtt.is_some() || config.bridge.is_some() {
        return run_with_mqtt(config);
    }
    daemon::run(config)?;
    Ok(())
}

/// A build without MQTT refuses a configuration that asks for it, at
/// start and in `--check`, rather than run a device nobody can reach.
#[cfg(not(feature = "mqtt"))]
fn without_mqtt(config: &DaemonConfig) -> Result<(), DaemonCmdError> {
    match (&config.mqtt, &config.bridge) {
        (Some(_), _) => Err(DaemonCmdError::WithoutMqtt("mqtt")),
        (None, Some(_)) => Err(DaemonCmdError::WithoutMqtt("bridge")),
        (None, None) => Ok(()),
    }
}

/// The daemon with the MQTT agent (`[mqtt]`) and the bridge (`[bridge]`).
#[cfg(feature = "mqtt")]
fn run_with_mqtt(config: DaemonConfig) -> Result<(), DaemonCmdError> {
    let agent_config = config.mqtt.as_ref().map(agent_config).transpose()?;
    let bridge = bridge_config(&config)?;
    daemon::run_with(
        config,
        Box::new(move |supervisor| {
            if let Some((settings, broker)) = bridge {
                match arcella_mqtt::bridge::Bridge::spawn(&settings, &broker, supervisor.bus()) {
                    Ok(_) => log::info!("bridge: joining the message bus to {}", settings.url),
                    Err(e) => log::error!("the MQTT bridge is off: {e}"),
                }
            }
            if let Some(agent_config) = agent_config {
                let device: std::sync::Arc<dyn arcella_mqtt::device::Device> = std::sync::Arc::new(supervisor);
                match arcella_mqtt::agent::Agent::spawn(agent_config, device) {
                    // The agent's threads live as long as the process.
                    Ok(agent) => std::mem::forget(agent),
                    Err(e) => log::error!("MQTT management is off: {e}"),
                }
            }
        }),
    )?;
    Ok(())
}

#[cfg(feature = "mqtt")]
/// `[bridge]` with its password read and its TLS files checked now, like
/// `[mqtt]`'s: a mistake stops the daemon at start, naming it.
fn bridge_config(
    config: &DaemonConfig,
) -> Result<Option<(arcella_core::daemon::config::BridgeSettings, BrokerSettings)>, DaemonCmdError> {
    let Some(settings) = &config.bridge else {
        return Ok(None);
    };
    let device = config.mqtt.as_ref().map(|m| m.device.as_str());
    let broker = arcella_mqtt::bridge::broker_settings(settings, device)?;
    Ok(Some((settings.clone(), broker)))
}

#[cfg(feature = "mqtt")]
/// The agent's settings from `[mqtt]`, with the password file read and the
/// TLS files checked now: a file that is missing or unusable stops the
/// daemon at start with an error naming it, like any other config mistake,
/// rather than leaving a device unmanaged with only a log line to say why.
fn agent_config(mqtt: &MqttSettings) -> Result<AgentConfig, DaemonCmdError> {
    let broker = BrokerSettings {
        username: mqtt.username.clone(),
        password: mqtt.read_password()?,
        ca_file: mqtt.ca_file.clone(),
        client_cert: mqtt.client_cert.clone(),
        client_key: mqtt.client_key.clone(),
        ..BrokerSettings::new(mqtt.url.clone(), mqtt.client_id())
    };
    broker.options()?;
    let trust = mqtt.trust_policy().map_err(|e| ConfigError::Invalid {
        file: "the configuration".into(),
        key: "mqtt.trusted_keys",
        message: e.to_string(),
    })?;
    let telemetry = mqtt.telemetry_interval().map_err(|message| ConfigError::Invalid {
        file: "the configuration".into(),
        key: "mqtt.telemetry",
        message,
    })?;
    Ok(AgentConfig {
        broker,
        device: mqtt.device.clone(),
        fleet: arcella_mqtt::reconcile::FleetSettings {
            group: mqtt.group.clone(),
            gate: arcella_mqtt::gate::GatePolicy {
                trust,
                signed_reads: mqtt.signed_reads,
                allow_remote_trusted: mqtt.allow_remote_trusted,
            },
            drift: mqtt.drift,
            json: mqtt.json,
        },
        json: mqtt.json.then(|| arcella_mqtt::json::JsonSettings {
            telemetry,
            home_assistant: mqtt.home_assistant.then(|| mqtt.home_assistant_prefix.clone()),
        }),
    })
}
