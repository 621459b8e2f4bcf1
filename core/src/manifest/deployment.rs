//! `deployment.toml`: how this device runs a module. Written by whoever
//! deploys it; every key has a default, so an empty file is valid.

use super::capabilities::Capabilities;
use super::enums::{isolation, kind};
use super::error::{DEPLOYMENT_FILE, ManifestError, Place};
use super::locate::KeyPath;
use super::names::{check_name, check_symbol};
use super::units::{duration, format_duration, format_size, opt_duration, opt_size};
use crate::protocol::{Isolation, ModuleKind};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// The contents of `deployment.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeploymentManifest {
    /// `"command"` (default) runs to completion; `"service"` runs until stopped.
    #[serde(with = "kind")]
    pub kind: ModuleKind,
    /// `"main"` (the daemon's process) or `"worker"` (default: safe by default).
    #[serde(with = "isolation")]
    pub isolation: Isolation,
    /// Whether the deployer vouches for the code (default false).
    pub trusted: bool,
    /// TOML key `async` (default true): an async task on the daemon's
    /// executor; false: a dedicated thread.
    pub r#async: bool,
    /// The worker group (default `"default"`); same rule as module names.
    pub group: String,
    pub startup: Startup,
    pub limits: Limits,
    pub restart: Restart,
    pub update: Update,
    pub capabilities: Capabilities,
    /// `[config]`: the runtime configuration the module reads through
    /// `wasi:config/store`, `key = "value"`; `arcella config set` layers
    /// operator values over it (docs/manifests.md).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
    /// `[http]`: serve the component's `wasi:http/incoming-handler` on
    /// this address (components only, `kind = "service"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<super::http::HttpSection>,
    /// `[imports]`: which provider module each imported interface may be
    /// linked to (manifest/imports.rs).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub imports: super::imports::ImportsSection,
    /// `[calls]`: how long this module's calls to providers may wait.
    pub calls: super::imports::CallsSection,
    /// `[provider]`: the instance pool of a `kind = "provider"` module.
    pub provider: super::imports::ProviderSection,
    /// `[logs]`: which of its log lines go to the fleet over MQTT.
    pub logs: super::logs::LogsSection,
}

impl Default for DeploymentManifest {
    fn default() -> Self {
        Self {
            kind: ModuleKind::Command,
            isolation: Isolation::Worker,
            trusted: false,
            r#async: true,
            group: "default".to_owned(),
            startup: Startup::default(),
            limits: Limits::default(),
            restart: Restart::default(),
            update: Update::default(),
            capabilities: Capabilities::default(),
            config: BTreeMap::new(),
            http: None,
            imports: BTreeMap::new(),
            calls: Default::default(),
            provider: Default::default(),
            logs: Default::default(),
        }
    }
}

/// `[startup]`: what to call, and whether to start at boot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Startup {
    /// The export to start; overrides component.toml's `entrypoint`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<String>,
    /// An export called to ask the module to stop, before it is killed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shutdown: Option<String>,
    /// Start when the daemon starts (default true).
    pub autostart: bool,
}

impl Default for Startup {
    fn default() -> Self {
        Self {
            entrypoint: None,
            shutdown: None,
            autostart: true,
        }
    }
}

/// `[limits]`: resource bounds; each unset key means "no limit".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Linear memory, bytes: an integer or `"64K"`/`"16M"`/`"1G"`; at least 64K.
    #[serde(with = "opt_size", skip_serializing_if = "Option::is_none")]
    pub memory: Option<u64>,
    /// Fuel (wasmtime instruction budget); more than 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u64>,
    /// Wall-clock bound on a command's run: `"500ms"`, `"10s"`, `"2m"`, `"1h"`; more than 0.
    #[serde(with = "opt_duration", skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// Guest stack, bytes, same syntax as `memory`; at least 4K.
    #[serde(with = "opt_size", skip_serializing_if = "Option::is_none")]
    pub stack: Option<u64>,
}

/// When a module that stopped is started again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    /// `"never"`.
    Never,
    /// `"on-failure"` (default): after a trap, an error exit or a timeout.
    #[default]
    OnFailure,
    /// `"always"`: also after a clean exit.
    Always,
}

/// `[restart]`: the restart policy and its exponential backoff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Restart {
    pub policy: RestartPolicy,
    /// The first delay (default 1s); doubled after each consecutive failure.
    #[serde(with = "duration")]
    pub backoff_initial: Duration,
    /// The longest delay (default 60s).
    #[serde(with = "duration")]
    pub backoff_max: Duration,
    /// More consecutive failures than this and the module is `failed` (default 5).
    pub max_restarts: u32,
    /// Restart the running module when its configuration changes
    /// (`arcella config set`/`unset`); default false: it reads the new
    /// values at its next `wasi:config` call, without a restart.
    pub on_config_change: bool,
}

impl Default for Restart {
    fn default() -> Self {
        Self {
            policy: RestartPolicy::OnFailure,
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            max_restarts: 5,
            on_config_change: false,
        }
    }
}

/// How an update replaces a running version.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UpdateStrategy {
    /// `"start-first"` (default): the new version starts; the old one is
    /// asked to stop only once the new one runs. No gap, but for a moment
    /// both run.
    #[default]
    StartFirst,
    /// `"stop-first"`: the old version stops (gracefully) before the new
    /// one starts, for modules of which two instances may not run at once.
    StopFirst,
}

/// `[update]`: how a new version replaces the running one, and how long it
/// must stay healthy before the previous one stops being the way back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Update {
    pub strategy: UpdateStrategy,
    /// After an update starts the new version, a trap, a non-zero exit or
    /// any failure within this window rolls back to the previous version
    /// (default 5s; "0s" turns the check off).
    #[serde(with = "duration")]
    pub health_window: Duration,
}

impl Default for Update {
    fn default() -> Self {
        Self {
            strategy: UpdateStrategy::StartFirst,
            health_window: Duration::from_secs(5),
        }
    }
}

/// The longest `update.health_window`.
pub const MAX_HEALTH_WINDOW: Duration = Duration::from_secs(600);

/// The shortest `restart.backoff_initial`: a module restarting faster
/// than this spends the device on restarts (and its log on saying so).
pub const MIN_BACKOFF: Duration = Duration::from_millis(100);

/// The smallest `limits.memory`: one WebAssembly page.
pub const MIN_MEMORY: u64 = 65536;
/// The smallest `limits.stack`.
pub const MIN_STACK: u64 = 4096;

impl DeploymentManifest {
    /// The field-level rules of deployment.toml, on their own (errors name
    /// [`DEPLOYMENT_FILE`], without a position).
    pub fn check(&self) -> Result<(), ManifestError> {
        let place = || Place::file(DEPLOYMENT_FILE);
        let invalid = |key: KeyPath, message: String| ManifestError::Invalid {
            place: place(),
            key,
            message,
        };
        if !self.trusted && self.isolation == Isolation::Main {
            return Err(ManifestError::UntrustedInMain { place: place() });
        }
        check_name(&self.group).map_err(|m| invalid(KeyPath::new("group"), format!("= {:?} {m}", self.group)))?;
        for (key, value) in [
            ("entrypoint", &self.startup.entrypoint),
            ("shutdown", &self.startup.shutdown),
        ] {
            if let Some(value) = value {
                let key = KeyPath::new("startup").key(key);
                check_symbol(value).map_err(|m| invalid(key, format!("= {value:?} {m}")))?;
            }
        }
        self.limits
            .check()
            .map_err(|(key, m)| invalid(KeyPath::new("limits").key(key), m))?;
        self.restart
            .check()
            .map_err(|(key, m)| invalid(KeyPath::new("restart").key(key), m))?;
        if self.update.health_window > MAX_HEALTH_WINDOW {
            return Err(invalid(
                KeyPath::new("update").key("health_window"),
                format!(
                    "= \"{}\" is too long: at most \"10m\" (the previous version waits that long to be let go)",
                    crate::run::humanize(self.update.health_window)
                ),
            ));
        }
        self.capabilities
            .check()
            .map_err(|(key, m)| invalid(KeyPath::new("capabilities").join(key), m))?;
        super::config::check_config(&self.config).map_err(|(key, m)| invalid(key, m))?;
        if self.kind != ModuleKind::Command && self.limits.timeout.is_some() {
            return Err(ManifestError::TimeoutOnService { place: place() });
        }
        super::imports::check(&self.imports, &self.calls, &self.provider).map_err(|(key, m)| invalid(key, m))?;
        if self.kind == ModuleKind::Provider && self.http.is_some() {
            return Err(invalid(
                KeyPath::new("http"),
                "a provider serves calls from other modules, not HTTP: make it kind = \"service\", or remove [http]"
                    .to_owned(),
            ));
        }
        if self.provider != super::imports::ProviderSection::default() && self.kind != ModuleKind::Provider {
            return Err(invalid(
                KeyPath::new("provider"),
                "applies to kind = \"provider\" only: set the kind, or remove [provider]".to_owned(),
            ));
        }
        if let Some(http) = &self.http {
            http.grant().map_err(|(key, m)| invalid(key, m))?;
            if !cfg!(feature = "http") {
                return Err(invalid(
                    KeyPath::new("http"),
                    "asks for incoming HTTP, but this daemon was built without it (the `http` cargo feature); \
                     install an Arcella build with HTTP, or remove [http]"
                        .to_owned(),
                ));
            }
            if self.kind != ModuleKind::Service {
                return Err(invalid(
                    KeyPath::new("kind"),
                    "must be \"service\" with [http]: a component serving HTTP runs until it is stopped".to_owned(),
                ));
            }
        }
        Ok(())
    }
}

impl Limits {
    fn check(&self) -> Result<(), (&'static str, String)> {
        let sizes = [
            ("memory", self.memory, MIN_MEMORY, ", one WebAssembly page"),
            ("stack", self.stack, MIN_STACK, ""),
        ];
        for (key, value, min, why) in sizes {
            if let Some(value) = value.filter(|v| *v < min) {
                let short = format_size(min);
                return Err((
                    key,
                    format!("= {value} bytes is too small: it must be at least {min} (\"{short}\"){why}"),
                ));
            }
        }
        if self.fuel == Some(0) {
            return Err((
                "fuel",
                "= 0 would stop the module at once; give more than 0, or leave it out".to_owned(),
            ));
        }
        if self.timeout == Some(Duration::ZERO) {
            return Err((
                "timeout",
                "is 0; give a duration greater than 0, or leave it out".to_owned(),
            ));
        }
        Ok(())
    }
}

impl Restart {
    fn check(&self) -> Result<(), (&'static str, String)> {
        let show = |d: Duration| format_duration(d).unwrap_or_else(|| format!("{d:?}"));
        if self.backoff_initial < MIN_BACKOFF {
            return Err((
                "backoff_initial",
                format!(
                    "= {} is too short: at least {} (faster restarts spend the device on restarting), such as \"1s\"",
                    show(self.backoff_initial),
                    show(MIN_BACKOFF)
                ),
            ));
        }
        if self.backoff_initial > self.backoff_max {
            return Err((
                "backoff_initial",
                format!(
                    "= {} is longer than `restart.backoff_max` = {}; the first delay cannot exceed the longest",
                    show(self.backoff_initial),
                    show(self.backoff_max)
                ),
            ));
        }
        Ok(())
    }
}
