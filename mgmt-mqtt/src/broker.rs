//! How to reach the broker: its URL, who we are on it, and TLS. One place
//! turns these settings into rumqttc options, for the device agent and for
//! operator tools alike, so both check the same things the same way.
//!
//! Every mistake is reported before anything connects, naming the setting
//! and the value (never the password); nothing here panics, even on the
//! inputs rumqttc itself would panic on (an empty client id with a
//! persistent session, a keep-alive under one second).

use arcella_core::broker_url::{BadBrokerUrl, BrokerUrl};
use rumqttc::MqttOptions;
#[cfg(feature = "tls")]
use rumqttc::{TlsConfiguration, Transport};
use std::fmt;
use std::path::PathBuf;
#[cfg(feature = "tls")]
use std::sync::Arc;
use std::time::Duration;

/// Where the broker is and how to log in to it.
#[derive(Clone)]
pub struct BrokerSettings {
    /// `mqtt://host[:port]` or `mqtts://host[:port]` (`arcella_core::broker_url`).
    pub url: String,
    /// The MQTT client id; it names the persistent session, so it must be
    /// stable and unique per device.
    pub client_id: String,
    pub username: Option<String>,
    pub password: Option<String>,
    /// PEM certificates to trust for the broker; required for `mqtts://`.
    /// The system's root store is deliberately never loaded: a device
    /// trusts the CA it was provisioned with, not whatever its image ships
    /// (which may be stale, or absent on a minimal rootfs).
    pub ca_file: Option<PathBuf>,
    /// PEM certificate chain for client authentication (with `client_key`).
    pub client_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) for `client_cert`.
    pub client_key: Option<PathBuf>,
    /// Ping interval when idle; zero turns pings off, otherwise at least 1 s.
    pub keep_alive: Duration,
}

impl BrokerSettings {
    /// `url` and `client_id`, anonymous, no client certificate, a 30 s
    /// keep-alive.
    pub fn new(url: impl Into<String>, client_id: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            client_id: client_id.into(),
            username: None,
            password: None,
            ca_file: None,
            client_cert: None,
            client_key: None,
            keep_alive: Duration::from_secs(30),
        }
    }

    /// rumqttc options for these settings: address, client id, keep-alive,
    /// credentials and, for `mqtts://`, a rustls configuration (ring
    /// provider) built from the PEM files, which are read now.
    ///
    /// Never print the result with `{:?}`: rumqttc's `Debug` shows the
    /// password.
    pub fn options(&self) -> Result<MqttOptions, BrokerError> {
        let url = BrokerUrl::parse(&self.url)?;
        if self.client_id.is_empty() {
            return Err(BrokerError::EmptyClientId);
        }
        if !self.keep_alive.is_zero() && self.keep_alive < Duration::from_secs(1) {
            return Err(BrokerError::KeepAlive(self.keep_alive));
        }
        let mut options = MqttOptions::new(self.client_id.clone(), url.host.clone(), url.port);
        options.set_keep_alive(self.keep_alive);
        match (&self.username, &self.password) {
            // An empty password is not sent at all (MQTT's password flag).
            (Some(user), password) => {
                options.set_credentials(user.clone(), password.clone().unwrap_or_default());
            }
            (None, Some(_)) => return Err(BrokerError::PasswordWithoutUsername),
            (None, None) => {}
        }
        let client_auth = match (&self.client_cert, &self.client_key) {
            (Some(cert), Some(key)) => Some((cert.as_path(), key.as_path())),
            (Some(cert), None) => return Err(BrokerError::MissingClientKey(cert.clone())),
            (None, Some(key)) => return Err(BrokerError::MissingClientCert(key.clone())),
            (None, None) => None,
        };
        if url.tls {
            #[cfg(not(feature = "tls"))]
            {
                let _ = client_auth;
                return Err(BrokerError::WithoutTls { url: self.url.clone() });
            }
            #[cfg(feature = "tls")]
            {
                let ca = self
                    .ca_file
                    .as_deref()
                    .ok_or_else(|| BrokerError::NoCaFile { url: self.url.clone() })?;
                let config = crate::tls::client_config(ca, client_auth)?;
                options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(Arc::new(config))));
            }
        } else if let Some(key) = self.tls_file_key() {
            return Err(BrokerError::TlsFileWithoutTls {
                url: self.url.clone(),
                key,
            });
        }
        Ok(options)
    }

    /// The first TLS file setting that is set, by name.
    fn tls_file_key(&self) -> Option<&'static str> {
        [
            ("ca_file", &self.ca_file),
            ("client_cert", &self.client_cert),
            ("client_key", &self.client_key),
        ]
        .into_iter()
        .find_map(|(key, value)| value.as_ref().map(|_| key))
    }
}

/// By hand, so that the password never reaches a log.
impl fmt::Debug for BrokerSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let password: &dyn fmt::Debug = match self.password {
            Some(_) => &"***",
            None => &None::<String>,
        };
        f.debug_struct("BrokerSettings")
            .field("url", &self.url)
            .field("client_id", &self.client_id)
            .field("username", &self.username)
            .field("password", password)
            .field("ca_file", &self.ca_file)
            .field("client_cert", &self.client_cert)
            .field("client_key", &self.client_key)
            .field("keep_alive", &self.keep_alive)
            .finish()
    }
}

/// Why broker settings cannot be used. Messages name the setting and the
/// offending value, never a password.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error(transparent)]
    Url(#[from] BadBrokerUrl),
    #[error("the client id is empty; a persistent session needs one")]
    EmptyClientId,
    #[error("keep-alive {0:?}: must be zero (no pings) or at least 1s")]
    KeepAlive(Duration),
    #[error("a password is set but no username; MQTT sends no password without one")]
    PasswordWithoutUsername,
    #[error(
        "broker URL `{url}`: mqtts:// needs ca_file (the CA that signed the broker's certificate; \
         system roots are not loaded)"
    )]
    NoCaFile { url: String },
    #[error("broker URL `{url}`: {key} is set but the URL is mqtt:// (plain TCP); use mqtts://")]
    TlsFileWithoutTls { url: String, key: &'static str },
    #[error("client_cert `{}` is set but client_key is missing", .0.display())]
    MissingClientKey(PathBuf),
    #[error("client_key `{}` is set but client_cert is missing", .0.display())]
    MissingClientCert(PathBuf),
    #[error("ca_file `{}`: {problem}", path.display())]
    CaFile { path: PathBuf, problem: String },
    #[error("client_cert `{}`: {problem}", path.display())]
    ClientCert { path: PathBuf, problem: String },
    #[error("client_key `{}`: {problem}", path.display())]
    ClientKey { path: PathBuf, problem: String },
    #[cfg(feature = "tls")]
    #[error("TLS setup: {0}")]
    Tls(#[from] rustls::Error),
    /// An mqtts:// URL in a build without TLS.
    #[cfg(not(feature = "tls"))]
    #[error(
        "broker URL `{url}`: this arcella is built without TLS (cargo feature `tls`); use mqtt:// on a network \
         you trust, or a build with TLS (the packaged one has it)"
    )]
    WithoutTls { url: String },
}

/// TCP settings for every Arcella connection: `TCP_NODELAY`, because the
/// traffic is small requests and answers that Nagle's algorithm would hold
/// back waiting for the peer's delayed ACK (measured: an `Info` round trip
/// through mosquitto on loopback took 88 ms at p50 without it).
pub fn network_options() -> rumqttc::NetworkOptions {
    let mut options = rumqttc::NetworkOptions::new();
    options.set_tcp_nodelay(true);
    options
}

#[cfg(test)]
mod tests {
    use super::*;
    use rumqttc::Transport;

    fn settings(url: &str) -> BrokerSettings {
        BrokerSettings::new(url, "arcella-gw-1")
    }

    #[test]
    fn a_plain_url_gives_tcp_options() {
        let mut s = settings("mqtt://broker.example.com");
        s.username = Some("gw-1".into());
        s.password = Some("pw1".into());
        s.keep_alive = Duration::from_secs(7);
        let options = s.options().unwrap();
        assert_eq!(options.broker_address(), ("broker.example.com".into(), 1883));
        assert_eq!(options.client_id(), "arcella-gw-1");
        assert_eq!(options.keep_alive(), Duration::from_secs(7));
        let login = options.credentials().unwrap();
        assert_eq!((login.username.as_str(), login.password.as_str()), ("gw-1", "pw1"));
        assert!(matches!(options.transport(), Transport::Tcp));
    }

    #[test]
    fn an_ipv6_host_is_handed_over_without_brackets() {
        let options = settings("mqtt://[::1]:1884").options().unwrap();
        assert_eq!(options.broker_address(), ("::1".into(), 1884));
    }

    #[test]
    fn a_username_alone_is_fine() {
        let mut s = settings("mqtt://b");
        s.username = Some("gw-1".into());
        let login = s.options().unwrap().credentials().unwrap();
        assert_eq!(login.password, "");
    }

    #[test]
    fn url_errors_come_through_with_their_message() {
        let err = settings("http://x").options().unwrap_err();
        assert!(matches!(err, BrokerError::Url(_)));
        assert_eq!(
            err.to_string(),
            "broker URL `http://x`: the scheme must be mqtt:// or mqtts://"
        );
    }

    #[test]
    fn what_rumqttc_would_panic_on_is_an_error() {
        let mut s = BrokerSettings::new("mqtt://b", "");
        assert!(matches!(s.options(), Err(BrokerError::EmptyClientId)));
        s.client_id = "c".into();
        s.keep_alive = Duration::from_millis(500);
        let err = s.options().unwrap_err();
        assert!(matches!(err, BrokerError::KeepAlive(_)), "{err}");
        s.keep_alive = Duration::ZERO;
        assert!(s.options().is_ok());
    }

    #[test]
    fn a_password_needs_a_username() {
        let mut s = settings("mqtt://b");
        s.password = Some("pw1".into());
        let err = s.options().unwrap_err();
        assert!(matches!(err, BrokerError::PasswordWithoutUsername));
        assert!(!err.to_string().contains("pw1"));
    }

    #[cfg(feature = "tls")]
    #[test]
    fn mqtts_needs_a_ca_file() {
        let err = settings("mqtts://b:8884").options().unwrap_err();
        assert!(matches!(err, BrokerError::NoCaFile { .. }));
        assert!(err.to_string().contains("mqtts:// needs ca_file"), "{err}");
        assert!(err.to_string().contains("`mqtts://b:8884`"), "{err}");
    }

    #[test]
    fn tls_files_with_a_plain_url_are_refused() {
        let mut s = settings("mqtt://b");
        s.client_key = Some("/k.pem".into());
        s.client_cert = Some("/c.pem".into());
        let err = s.options().unwrap_err();
        assert!(
            matches!(err, BrokerError::TlsFileWithoutTls { key: "client_cert", .. }),
            "{err}"
        );
    }

    #[test]
    fn a_client_certificate_needs_its_key_and_the_other_way_round() {
        let mut s = settings("mqtts://b");
        s.ca_file = Some("/ca.pem".into());
        s.client_cert = Some("/c.pem".into());
        let err = s.options().unwrap_err();
        assert!(matches!(err, BrokerError::MissingClientKey(_)));
        assert_eq!(err.to_string(), "client_cert `/c.pem` is set but client_key is missing");
        s.client_cert = None;
        s.client_key = Some("/k.pem".into());
        let err = s.options().unwrap_err();
        assert!(matches!(err, BrokerError::MissingClientCert(_)));
        assert_eq!(err.to_string(), "client_key `/k.pem` is set but client_cert is missing");
    }

    /// `cargo test -p arcella-mqtt --no-default-features` (scripts/test).
    #[cfg(not(feature = "tls"))]
    #[test]
    fn without_tls_an_mqtts_url_is_refused_naming_the_feature() {
        let mut s = settings("mqtts://b:8884");
        s.ca_file = Some("/ca.pem".into());
        let err = s.options().unwrap_err();
        assert!(matches!(err, BrokerError::WithoutTls { .. }), "{err}");
        let text = err.to_string();
        assert!(text.contains("`mqtts://b:8884`"), "{text}");
        assert!(text.contains("built without TLS (cargo feature `tls`)"), "{text}");
        // A plain URL still connects.
        assert!(settings("mqtt://b").options().is_ok());
    }

    #[test]
    fn debug_hides_the_password() {
        let mut s = settings("mqtt://b");
        assert!(format!("{s:?}").contains("password: None"));
        s.username = Some("gw-1".into());
        s.password = Some("hunter2".into());
        let shown = format!("{s:?}");
        assert!(shown.contains(r#"password: "***""#), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
