//! `[mqtt]` in arcella.toml: the broker, who this device is on it, and how
//! it proves that (docs/mqtt.md, "Connecting").
//!
//! Everything that can be checked without touching the disk is checked in
//! [`MqttSettings::validate`], so a mistake is a config error naming its
//! key. The files (password, CA, client certificate and key) are read once
//! when the daemon starts; like `data_dir`, `socket` and `workers.binary`,
//! a relative path is taken as written, i.e. relative to the daemon's
//! working directory (`/` under systemd), so absolute paths are advised.

use crate::broker_url::BrokerUrl;
use serde::Deserialize;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// `[mqtt]`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttSettings {
    /// `mqtt://host[:port]` (default port 1883) or `mqtts://host[:port]`
    /// (TLS, default port 8883).
    pub url: String,
    /// This device's id on the broker (the module-name rule).
    pub device: String,
    /// The MQTT client id, which names the persistent session; default
    /// `arcella-<device>`.
    pub client_id: Option<String>,
    pub username: Option<String>,
    /// The password, in the config file itself.
    pub password: Option<String>,
    /// A file holding the password (trailing line breaks ignored), read at
    /// start; lets the config file stay world-readable.
    pub password_file: Option<PathBuf>,
    /// PEM CA certificate(s) the broker's certificate must chain to;
    /// required with `mqtts://` (system roots are never loaded).
    pub ca_file: Option<PathBuf>,
    /// PEM certificate chain presented to the broker (with `client_key`).
    pub client_cert: Option<PathBuf>,
    /// PEM private key of `client_cert`.
    pub client_key: Option<PathBuf>,
    /// The fleet group whose desired state this device also follows.
    #[serde(default)]
    pub group: Option<String>,
    /// Public keys (64 hex digits, from `arcella keygen`) whose signatures
    /// make an artifact arriving over MQTT installable.
    #[serde(default)]
    pub trusted_keys: Vec<String>,
    /// Install unsigned artifacts from MQTT too (signed ones must still
    /// verify). Off: only signed artifacts are installed.
    #[serde(default)]
    pub allow_unsigned: bool,
    /// Reads (info, list, status, inspect, logs) over MQTT need a signed
    /// request too. Off: the broker's ACL decides who may read; operate
    /// and change requests are always signed.
    #[serde(default)]
    pub signed_reads: bool,
    /// A remote source (a command or a desired-state document) may install
    /// modules with `trusted = true` or `isolation = "main"`. Off: only the
    /// local socket can put code into the daemon's own process.
    #[serde(default)]
    pub allow_remote_trusted: bool,
    /// What to do when a module the fleet manages drifts from its desired
    /// state (removed, stopped or replaced by hand, crash-looping):
    /// `"report"` it, or `"restore"` the desired state.
    #[serde(default)]
    pub drift: DriftPolicy,
    /// Which module log lines go to the fleet (`<base>/events`): `"off"`
    /// (default: a cellular link pays for every line) or the lowest level
    /// sent. A module's own `[logs] forward` overrides it.
    #[serde(default)]
    pub logs: crate::manifest::logs::LogForward,
    /// At most this many lines a minute per module are sent (1..=6000,
    /// default 60); the rest are counted, and the count is sent instead.
    #[serde(default = "default_logs_per_minute")]
    pub logs_per_minute: u32,
    /// Publish the JSON mirror (`<base>/json/…`: state, convergence,
    /// events, telemetry) that tools without Arcella read. Default on.
    #[serde(default = "yes")]
    pub json: bool,
    /// How often the JSON mirror's telemetry goes out: a duration from
    /// `1s` to `24h` (default `5m`), or `"off"`.
    #[serde(default = "default_telemetry")]
    pub telemetry: String,
    /// Announce the device and its modules to Home Assistant (MQTT
    /// discovery, retained under `home_assistant_prefix`). Needs `json`.
    #[serde(default)]
    pub home_assistant: bool,
    /// Home Assistant's discovery prefix (its default: `homeassistant`).
    #[serde(default = "default_home_assistant_prefix")]
    pub home_assistant_prefix: String,
}

fn default_logs_per_minute() -> u32 {
    60
}

fn yes() -> bool {
    true
}

fn default_telemetry() -> String {
    "5m".into()
}

fn default_home_assistant_prefix() -> String {
    "homeassistant".into()
}

/// The bounds of `[mqtt] telemetry`.
const TELEMETRY_RANGE: std::ops::RangeInclusive<Duration> = Duration::from_secs(1)..=Duration::from_secs(24 * 3600);

/// `[mqtt] drift`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DriftPolicy {
    /// Report drift in the convergence state; leave the module be.
    #[default]
    Report,
    /// Report it and bring the module back to its desired state.
    Restore,
}

/// Why the password file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PasswordFileError {
    #[error("[mqtt] password_file `{}`: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("[mqtt] password_file `{}` is empty", path.display())]
    Empty { path: PathBuf },
}

impl MqttSettings {
    /// `client_id`, or `arcella-<device>`.
    pub fn client_id(&self) -> String {
        self.client_id
            .clone()
            .unwrap_or_else(|| format!("arcella-{}", self.device))
    }

    /// `password`, or the content of `password_file` without its trailing
    /// line breaks (as `echo` leaves them), or none.
    pub fn read_password(&self) -> Result<Option<String>, PasswordFileError> {
        let Some(path) = &self.password_file else {
            return Ok(self.password.clone());
        };
        let text = std::fs::read_to_string(path).map_err(|source| PasswordFileError::Read {
            path: path.clone(),
            source,
        })?;
        let password = text.trim_end_matches(['\n', '\r']);
        if password.is_empty() {
            return Err(PasswordFileError::Empty { path: path.clone() });
        }
        Ok(Some(password.to_owned()))
    }

    /// How often telemetry goes out (`None`: never, or no JSON mirror).
    pub fn telemetry_interval(&self) -> Result<Option<Duration>, String> {
        if self.telemetry == "off" || !self.json {
            return Ok(None);
        }
        let interval = crate::units::parse_duration(&self.telemetry)
            .map_err(|e| format!("{e}; give a duration from 1s to 24h (\"30s\", \"5m\", \"1h\") or \"off\""))?;
        if !TELEMETRY_RANGE.contains(&interval) {
            return Err(format!(
                "`{}` is not between 1s and 24h (to send no telemetry, set telemetry = \"off\")",
                self.telemetry
            ));
        }
        Ok(Some(interval))
    }

    /// The trust store, checked: every key must parse.
    pub fn trust_policy(&self) -> Result<crate::signing::TrustPolicy, crate::signing::SigningError> {
        Ok(crate::signing::TrustPolicy {
            trusted_keys: self
                .trusted_keys
                .iter()
                .map(|k| crate::signing::public_from_text(k))
                .collect::<Result<_, _>>()?,
            allow_unsigned: self.allow_unsigned,
        })
    }

    /// The checks serde cannot express; `Err((key, message))`. The agent's
    /// `BrokerSettings::options` repeats the TLS and credential checks for
    /// operator tools, which have no config file; here they name the key.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let url = BrokerUrl::parse(&self.url).map_err(|e| ("mqtt.url", e.to_string()))?;
        crate::manifest::check_name(&self.device).map_err(|m| ("mqtt.device", format!("`{}` {m}", self.device)))?;
        if let Some(group) = &self.group {
            crate::manifest::check_name(group).map_err(|m| ("mqtt.group", format!("`{group}` {m}")))?;
        }
        self.trust_policy().map_err(|e| ("mqtt.trusted_keys", e.to_string()))?;
        if !(1..=6000).contains(&self.logs_per_minute) {
            return Err((
                "mqtt.logs_per_minute",
                format!(
                    "{} is not between 1 and 6000 (to send no log lines, set logs = \"off\")",
                    self.logs_per_minute
                ),
            ));
        }
        self.telemetry_interval().map_err(|m| ("mqtt.telemetry", m))?;
        if self.home_assistant && !self.json {
            return Err((
                "mqtt.home_assistant",
                "Home Assistant reads the JSON mirror: set json = true (or home_assistant = false)".into(),
            ));
        }
        if self.home_assistant_prefix.is_empty()
            || self.home_assistant_prefix.contains(['+', '#'])
            || self.home_assistant_prefix.starts_with('/')
            || self.home_assistant_prefix.ends_with('/')
        {
            return Err((
                "mqtt.home_assistant_prefix",
                format!(
                    "`{}` is not a topic prefix: no wildcards (+ #), no leading or trailing /",
                    self.home_assistant_prefix
                ),
            ));
        }
        if self.client_id.as_deref() == Some("") {
            return Err(("mqtt.client_id", "must not be empty (it names the session)".into()));
        }
        if self.password.is_some() && self.password_file.is_some() {
            return Err(("mqtt.password_file", "give password or password_file, not both".into()));
        }
        if (self.password.is_some() || self.password_file.is_some()) && self.username.is_none() {
            return Err((
                "mqtt.username",
                "a password needs a username (MQTT sends no password without one)".into(),
            ));
        }
        match (&self.client_cert, &self.client_key) {
            (Some(_), None) => return Err(("mqtt.client_key", "client_cert is set but client_key is missing".into())),
            (None, Some(_)) => {
                return Err((
                    "mqtt.client_cert",
                    "client_key is set but client_cert is missing".into(),
                ));
            }
            _ => {}
        }
        if url.tls && self.ca_file.is_none() {
            return Err((
                "mqtt.ca_file",
                format!(
                    "`{}` is mqtts://, which needs ca_file (the CA that signed the broker's certificate; \
                     system roots are not loaded)",
                    self.url
                ),
            ));
        }
        let tls_files = [&self.ca_file, &self.client_cert, &self.client_key];
        if !url.tls && tls_files.iter().any(|f| f.is_some()) {
            return Err((
                "mqtt.url",
                format!(
                    "`{}` is plain TCP but ca_file, client_cert or client_key is set; use mqtts://",
                    self.url
                ),
            ));
        }
        Ok(())
    }
}

/// By hand, so that the password never reaches a log.
impl fmt::Debug for MqttSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let password: &dyn fmt::Debug = match self.password {
            Some(_) => &"***",
            None => &None::<String>,
        };
        f.debug_struct("MqttSettings")
            .field("url", &self.url)
            .field("device", &self.device)
            .field("client_id", &self.client_id)
            .field("username", &self.username)
            .field("password", password)
            .field("password_file", &self.password_file)
            .field("ca_file", &self.ca_file)
            .field("client_cert", &self.client_cert)
            .field("client_key", &self.client_key)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use crate::daemon::config::DaemonConfig;
    use std::path::PathBuf;

    fn parse(mqtt: &str) -> Result<super::MqttSettings, String> {
        DaemonConfig::parse(&format!("[mqtt]\n{mqtt}"), "a.toml")
            .map(|c| c.mqtt.unwrap())
            .map_err(|e| e.to_string())
    }

    /// docs/mqtt.md stays true: each ```toml block is an arcella.toml
    /// `[mqtt]` that parses and validates, or a deployment.toml fragment.
    #[test]
    fn the_docs_examples_parse_and_validate() {
        let doc = include_str!("../../../../docs/mqtt.md");
        let blocks: Vec<&str> = doc
            .split("```toml\n")
            .skip(1)
            .filter_map(|rest| rest.split_once("```").map(|(block, _)| block))
            .collect();
        assert!(blocks.len() >= 3, "{blocks:?}");
        for block in blocks {
            if block.starts_with("# deployment.toml") {
                crate::manifest::parse_deployment(block, "deployment.toml").unwrap_or_else(|e| panic!("{block}: {e}"));
                continue;
            }
            let config = DaemonConfig::parse(block, "arcella.toml").unwrap_or_else(|e| panic!("{block}: {e}"));
            let mqtt = config.mqtt.unwrap_or_else(|| panic!("no [mqtt] in {block}"));
            mqtt.validate().unwrap_or_else(|e| panic!("{block}: {e:?}"));
        }
    }

    #[test]
    fn the_keys_are_read_and_the_client_id_defaults_to_the_device() {
        let m = parse(
            "url = \"mqtts://broker:8884\"\ndevice = \"gw-1\"\nusername = \"gw-1\"\n\
             password_file = \"/etc/arcella/mqtt.pw\"\nca_file = \"/etc/arcella/ca.pem\"\n\
             client_cert = \"/etc/arcella/gw-1.pem\"\nclient_key = \"/etc/arcella/gw-1.key\"\n",
        )
        .unwrap();
        assert_eq!(m.client_id(), "arcella-gw-1");
        assert_eq!(m.ca_file, Some(PathBuf::from("/etc/arcella/ca.pem")));
        let m = parse("url = \"mqtt://b\"\ndevice = \"gw-1\"\nclient_id = \"fleet-7\"\n").unwrap();
        assert_eq!(m.client_id(), "fleet-7");
    }

    #[test]
    fn unknown_and_old_keys_are_refused() {
        let err = parse("host = \"b\"\nport = 1883\ndevice = \"gw-1\"\n").unwrap_err();
        assert!(err.contains("host"), "{err}");
    }

    #[test]
    fn each_mistake_names_its_key() {
        let cases = [
            (
                "url = \"http://x\"\ndevice = \"d\"",
                "`mqtt.url`: broker URL `http://x`: the scheme",
            ),
            ("url = \"mqtt://b\"\ndevice = \"D/1\"", "`mqtt.device`"),
            (
                "url = \"mqtt://b\"\ndevice = \"d\"\nclient_id = \"\"",
                "`mqtt.client_id`",
            ),
            (
                "url = \"mqtt://b\"\ndevice = \"d\"\nusername = \"u\"\npassword = \"p\"\npassword_file = \"/p\"",
                "`mqtt.password_file`: give password or password_file, not both",
            ),
            (
                "url = \"mqtt://b\"\ndevice = \"d\"\npassword = \"p\"",
                "`mqtt.username`",
            ),
            ("url = \"mqtts://b\"\ndevice = \"d\"", "`mqtt.ca_file`"),
            (
                "url = \"mqtts://b\"\ndevice = \"d\"\nca_file = \"/ca\"\nclient_cert = \"/c\"",
                "`mqtt.client_key`",
            ),
            (
                "url = \"mqtts://b\"\ndevice = \"d\"\nca_file = \"/ca\"\nclient_key = \"/k\"",
                "`mqtt.client_cert`",
            ),
            ("url = \"mqtt://b\"\ndevice = \"d\"\nca_file = \"/ca\"", "`mqtt.url`"),
        ];
        for (text, expected) in cases {
            let err = parse(text).unwrap_err();
            assert!(err.starts_with("a.toml: ") && err.contains(expected), "{text}\n{err}");
        }
    }

    #[test]
    fn the_password_never_shows() {
        let m = parse("url = \"mqtt://b\"\ndevice = \"d\"\nusername = \"u\"\npassword = \"hunter2\"").unwrap();
        assert!(!format!("{m:?}").contains("hunter2"));
        let err = parse("url = \"mqtt://u:hunter2@b\"\ndevice = \"d\"").unwrap_err();
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn the_password_file_is_read_without_its_line_break() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "s3cret\n").unwrap();
        let text = format!(
            "url = \"mqtt://b\"\ndevice = \"d\"\nusername = \"u\"\npassword_file = \"{}\"",
            file.display()
        );
        assert_eq!(
            parse(&text).unwrap().read_password().unwrap().as_deref(),
            Some("s3cret")
        );
        std::fs::write(&file, "\n").unwrap();
        let err = parse(&text).unwrap().read_password().unwrap_err().to_string();
        assert!(err.contains("is empty") && err.contains("pw`"), "{err}");
        std::fs::remove_file(&file).unwrap();
        let err = parse(&text).unwrap().read_password().unwrap_err().to_string();
        assert!(err.starts_with("[mqtt] password_file `"), "{err}");
    }
}
