//! The daemon's configuration: a TOML file (unknown keys refused), then an
//! explicit validation step, then command-line overrides.

use crate::board::{self, BoardError, BoardSearch, ModuleDefaults};
use crate::engine::EngineProfile;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub mod bridge;
pub mod mqtt;

pub use bridge::BridgeSettings;
pub use mqtt::MqttSettings;

/// `arcella.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DaemonConfig {
    /// Where artifacts, module records and uploads live.
    pub data_dir: PathBuf,
    /// The management socket.
    pub socket: PathBuf,
    /// `error`, `warn`, `info`, `debug` or `trace`; `RUST_LOG` wins.
    pub log_level: String,
    /// The board this device is: `generic` (built-in defaults), a board
    /// name looked up as `NAME.toml` (in `boards_dir`, else `boards/` beside
    /// this file, then /usr/share/arcella/boards), or a path to a board
    /// file. The board's settings lie under this file's: keys set here win.
    /// After loading, the board's own name (shown by `arcella info`).
    pub board: String,
    /// Where board names are looked up (relative to this file's directory).
    pub boards_dir: Option<PathBuf>,
    /// How long running modules get to stop at shutdown, e.g. "5s".
    #[serde(with = "duration_text")]
    pub shutdown_grace: Duration,
    /// Who may use the socket besides root and the daemon's own user.
    pub access: Access,
    /// The engine every module runs in; artifacts must match it.
    pub engine: EngineProfile,
    /// Worker processes for untrusted modules.
    pub workers: super::workers::WorkerConfig,
    /// Versions kept per module beyond the running and the previous one.
    pub retain_versions: u32,
    /// The most the data directory may hold, e.g. "256MiB"; unset: the
    /// file system's free space is the only limit.
    #[serde(with = "opt_size_text")]
    pub disk_quota: Option<u64>,
    /// The memory all modules together may declare (`limits.memory`);
    /// unset: no device-wide check (worker groups keep their own budget).
    #[serde(with = "opt_size_text")]
    pub memory_budget: Option<u64>,
    /// Limits a deployment gets when it sets none.
    pub module_defaults: ModuleDefaults,
    /// What deployments may ask for on this device.
    pub policy: Policy,
    /// Fleet management over MQTT; off unless configured.
    pub mqtt: Option<MqttSettings>,
    /// The message bus joined to an MQTT broker (config/bridge.rs); off
    /// unless configured.
    pub bridge: Option<BridgeSettings>,
    /// The audit trail (`<data_dir>/audit/`).
    pub audit: AuditConfig,
    /// Guests' HTTP (`wasi:http`).
    pub http: HttpConfig,
    /// Whether this file sets `[engine]` keys of its own (over its
    /// board's): then only a board file with them reproduces the engine.
    #[serde(skip)]
    pub own_engine_settings: bool,
}

/// `[http]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// PEM file of CA certificates guests' https requests trust besides
    /// Mozilla's roots (a private CA); at most 6 KiB.
    pub ca_file: Option<PathBuf>,
}

impl HttpConfig {
    /// The extra roots' PEM (empty without `ca_file`), checked.
    pub fn roots(&self) -> Result<Vec<u8>, String> {
        let Some(file) = &self.ca_file else {
            return Ok(Vec::new());
        };
        let pem = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
        crate::host::http::check_roots(&pem).map_err(|e| format!("{} {e}", file.display()))?;
        Ok(pem)
    }
}

/// `[audit]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// The size at which `audit.log` is rotated to `audit.log.1` (the
    /// trail keeps at most twice this), e.g. "1MiB".
    #[serde(with = "size_text")]
    pub max_size: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            max_size: super::audit::DEFAULT_MAX_SIZE,
        }
    }
}

/// `[policy]`: capabilities this device allows deployments to ask for.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    /// Host directories (and what is under them) a module may be granted;
    /// empty: any.
    pub dirs: Vec<PathBuf>,
    /// Whether `trusted = true` (in-process) modules are allowed.
    pub allow_trusted: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            dirs: Vec::new(),
            allow_trusted: true,
        }
    }
}

/// Socket access control, checked with SO_PEERCRED on every connection.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Access {
    pub allowed_uids: Vec<u32>,
    pub allowed_gids: Vec<u32>,
    /// Users who may only read (info, list, status, inspect, logs).
    pub read_only_uids: Vec<u32>,
    /// Groups whose members may only read.
    pub read_only_gids: Vec<u32>,
    /// If set, the socket is made group-accessible (0660) for this gid.
    pub socket_gid: Option<u32>,
    /// The same by name (looked up at start): portable across machines,
    /// where a group's gid is not.
    pub socket_group: Option<String>,
    /// A connection that sends no request for this long after its
    /// handshake is closed (one following events is not idle), e.g. "60s".
    #[serde(with = "duration_text")]
    pub idle_timeout: Duration,
}

/// The default `[access] idle_timeout`.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

impl Default for Access {
    fn default() -> Self {
        Self {
            allowed_uids: Vec::new(),
            allowed_gids: Vec::new(),
            read_only_uids: Vec::new(),
            read_only_gids: Vec::new(),
            socket_gid: None,
            socket_group: None,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
        }
    }
}

impl Default for DaemonConfig {
    fn default() -> Self {
        let defaults = super::paths::Defaults::for_this_user();
        Self {
            data_dir: defaults.data_dir,
            socket: defaults.socket,
            log_level: "info".into(),
            board: board::GENERIC.into(),
            boards_dir: None,
            shutdown_grace: Duration::from_secs(5),
            access: Access::default(),
            engine: EngineProfile::default(),
            workers: super::workers::WorkerConfig::default(),
            retain_versions: 0,
            disk_quota: None,
            memory_budget: None,
            module_defaults: ModuleDefaults::default(),
            policy: Policy::default(),
            mqtt: None,
            bridge: None,
            audit: AuditConfig::default(),
            http: HttpConfig::default(),
            own_engine_settings: false,
        }
    }
}

/// Why the configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: {source}")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{message}")]
    Parse { file: String, message: String },
    #[error("{file}: `board`: {source}")]
    Board {
        file: String,
        #[source]
        source: BoardError,
    },
    #[error("{file}: `{key}`: {message}")]
    Invalid {
        file: String,
        key: &'static str,
        message: String,
    },
}

const LEVELS: [&str; 5] = ["error", "warn", "info", "debug", "trace"];

impl DaemonConfig {
    /// Reads `file`; a missing file at the default location means defaults.
    pub fn load(file: &Path, must_exist: bool) -> Result<Self, ConfigError> {
        let shown = file.display().to_string();
        let text = match std::fs::read_to_string(file) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !must_exist => return Ok(Self::default()),
            Err(source) => return Err(ConfigError::Read { file: shown, source }),
        };
        let dir = file
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        Self::parse_in(&text, &shown, dir)
    }

    /// Parses and validates configuration text; board files are looked up
    /// relative to the current directory.
    pub fn parse(text: &str, file: &str) -> Result<Self, ConfigError> {
        Self::parse_in(text, file, Path::new("."))
    }

    /// Parses and validates configuration text from a file in `dir`: if it
    /// names a board, the board's settings are laid under it first.
    pub fn parse_in(text: &str, file: &str, dir: &Path) -> Result<Self, ConfigError> {
        let parse_err = |e: toml::de::Error, text: &str| ConfigError::Parse {
            file: file.to_owned(),
            message: crate::units::describe_toml_error(file, &e, text),
        };
        // The file alone first, so its errors point at its own lines.
        let mut config: Self = toml::from_str(text).map_err(|e| parse_err(e, text))?;
        let own: toml::Table = toml::from_str(text).map_err(|e| parse_err(e, text))?;
        let own_engine_settings = own.contains_key("engine");
        if config.board == board::GENERIC {
            config.own_engine_settings = own_engine_settings;
            config.validate(file)?;
            return Ok(config);
        }
        let board_err = |source| ConfigError::Board {
            file: file.to_owned(),
            source,
        };
        let board = BoardSearch::for_daemon(config.boards_dir.as_deref(), dir)
            .load(&config.board, dir)
            .map_err(board_err)?;
        let mut merged = board.config_defaults();
        board::merge_tables(&mut merged, own);
        merged.insert("board".into(), toml::Value::String(board.name.clone()));
        let merged_text = toml::to_string(&merged).map_err(|e| ConfigError::Parse {
            file: file.to_owned(),
            message: format!("{file}: board `{}`: {e}", board.name),
        })?;
        let mut config: Self = toml::from_str(&merged_text).map_err(|e| parse_err(e, &merged_text))?;
        config.own_engine_settings = own_engine_settings;
        config.validate(file)?;
        Ok(config)
    }

    /// The checks serde cannot express.
    pub fn validate(&self, file: &str) -> Result<(), ConfigError> {
        let invalid = |key, message: String| ConfigError::Invalid {
            file: file.to_owned(),
            key,
            message,
        };
        if !LEVELS.contains(&self.log_level.as_str()) {
            return Err(invalid(
                "log_level",
                format!("`{}` is not one of {}", self.log_level, LEVELS.join(", ")),
            ));
        }
        if self.data_dir.as_os_str().is_empty() {
            return Err(invalid("data_dir", "must not be empty".into()));
        }
        if self.socket.as_os_str().is_empty() {
            return Err(invalid("socket", "must not be empty".into()));
        }
        // sun_path holds 108 bytes including the terminating NUL.
        if self.socket.as_os_str().len() > 107 {
            return Err(invalid("socket", "a Unix socket path must be at most 107 bytes".into()));
        }
        if self.audit.max_size < 4096 {
            return Err(invalid(
                "audit.max_size",
                format!(
                    "{} bytes is too small to hold a record; use at least 4KiB",
                    self.audit.max_size
                ),
            ));
        }
        self.http.roots().map_err(|e| invalid("http.ca_file", e))?;
        if self.shutdown_grace > Duration::from_secs(300) {
            return Err(invalid("shutdown_grace", "must be at most 5m".into()));
        }
        if self.access.socket_gid.is_some() && self.access.socket_group.is_some() {
            return Err(invalid(
                "access.socket_group",
                "give socket_gid or socket_group, not both".into(),
            ));
        }
        if self.access.idle_timeout < Duration::from_millis(100) {
            return Err(invalid(
                "access.idle_timeout",
                "must be at least 100ms: a client needs time to send its first request after the handshake".into(),
            ));
        }
        self.engine.validate().map_err(|e| invalid("engine", e.to_string()))?;
        self.workers
            .validate()
            .map_err(|(key, message)| invalid(key, message))?;
        if let Some(memory) = self.module_defaults.memory
            && memory < 64 * 1024
        {
            return Err(invalid(
                "module_defaults.memory",
                format!("{memory} bytes is below one WebAssembly page (64K)"),
            ));
        }
        if self.retain_versions > 16 {
            return Err(invalid("retain_versions", "must be at most 16".into()));
        }
        if let Some(dir) = self.policy.dirs.iter().find(|d| !d.is_absolute()) {
            return Err(invalid(
                "policy.dirs",
                format!("`{}` is not an absolute path", dir.display()),
            ));
        }
        if let Some(mqtt) = &self.mqtt {
            mqtt.validate().map_err(|(key, message)| invalid(key, message))?;
        }
        if let Some(bridge) = &self.bridge {
            bridge.validate().map_err(|(key, message)| invalid(key, message))?;
        }
        Ok(())
    }
}

/// Optional sizes written as "64MiB", "512K" or a number of bytes.
mod opt_size_text {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        let text = String::deserialize(d)?;
        crate::units::parse_bytes(&text)
            .map(Some)
            .map_err(serde::de::Error::custom)
    }
}

/// Sizes written as "1MiB", "512K" or a number of bytes.
mod size_text {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        let text = String::deserialize(d)?;
        crate::units::parse_bytes(&text).map_err(serde::de::Error::custom)
    }
}

/// Durations written as "500ms", "5s", "2m".
mod duration_text {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        crate::units::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_file_means_defaults() {
        let config = DaemonConfig::parse("", "arcella.toml").unwrap();
        assert_eq!(config, DaemonConfig::default());
    }

    #[test]
    fn keys_are_read_and_unknown_keys_named() {
        let config = DaemonConfig::parse(
            "data_dir = \"/d\"\nsocket = \"/s.sock\"\nshutdown_grace = \"2s\"\n[engine]\ntarget = \"pulley64\"\n",
            "a.toml",
        )
        .unwrap();
        assert_eq!(config.data_dir, PathBuf::from("/d"));
        assert_eq!(config.shutdown_grace, Duration::from_secs(2));
        let err = DaemonConfig::parse("data_dri = \"/d\"", "a.toml")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("a.toml:1:") && err.contains("data_dri"), "{err}");
        let err = DaemonConfig::parse("[access]\nallowed_uid = [1]", "a.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("allowed_uid"), "{err}");
    }

    fn board_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("boards")).unwrap();
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../board-configs/small-128m.toml");
        std::fs::copy(source, dir.path().join("boards/small-128m.toml")).unwrap();
        dir
    }

    #[test]
    fn a_board_lays_its_settings_under_the_file() {
        let dir = board_dir();
        let config = DaemonConfig::parse_in("board = \"small-128m\"\n", "a.toml", dir.path()).unwrap();
        assert_eq!(config.board, "small-128m");
        assert_eq!(config.engine.memory_reservation, Some(16 << 20));
        assert_eq!(config.memory_budget, Some(64 << 20));
        assert_eq!(config.module_defaults.memory, Some(8 << 20));
        assert_eq!((config.workers.memory, config.workers.pids), (32 << 20, 16));
        assert_eq!(config.data_dir, PathBuf::from("/var/lib/arcella"));
        assert!(
            config.workers.seccomp,
            "keys the board does not set keep their defaults"
        );

        // Keys the file sets win, table by table.
        let text =
            "board = \"small-128m\"\ndata_dir = \"/d\"\n[engine]\nmemory_reservation = 8388608\n[workers]\npids = 8\n";
        let config = DaemonConfig::parse_in(text, "a.toml", dir.path()).unwrap();
        assert_eq!(config.data_dir, PathBuf::from("/d"));
        assert_eq!(config.engine.memory_reservation, Some(8 << 20));
        assert_eq!(config.engine.max_wasm_stack, 256 << 10, "the board's, not the default");
        assert_eq!((config.workers.memory, config.workers.pids), (32 << 20, 8));

        // A path works too, and `board` then shows the board's name.
        let config = DaemonConfig::parse_in("board = \"boards/small-128m.toml\"", "a.toml", dir.path()).unwrap();
        assert_eq!(config.board, "small-128m");
    }

    #[test]
    fn a_missing_board_names_where_it_was_looked_for() {
        let dir = board_dir();
        let err = DaemonConfig::parse_in("board = \"rpi9\"", "a.toml", dir.path())
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("a.toml: `board`: no board `rpi9`") && err.contains("boards"),
            "{err}"
        );
        let err = DaemonConfig::parse_in("board = \"rpi9\"\nboards_dir = \"/nowhere\"", "a.toml", dir.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nowhere"), "{err}");
    }

    #[test]
    fn validation_names_the_key_and_what_is_allowed() {
        let err = DaemonConfig::parse("log_level = \"loud\"", "a.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("log_level") && err.contains("info"), "{err}");
        let long = format!("socket = \"/{}\"", "x".repeat(200));
        let err = DaemonConfig::parse(&long, "a.toml").unwrap_err().to_string();
        assert!(err.contains("`socket`"), "{err}");
        let err = DaemonConfig::parse("shutdown_grace = \"soon\"", "a.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("shutdown_grace") || err.contains("soon"), "{err}");
        let err = DaemonConfig::parse("[access]\nidle_timeout = \"1ms\"", "a.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("access.idle_timeout") && err.contains("100ms"), "{err}");
        let config = DaemonConfig::parse("[access]\nidle_timeout = \"5m\"", "a.toml").unwrap();
        assert_eq!(config.access.idle_timeout, Duration::from_secs(300));
    }
}
