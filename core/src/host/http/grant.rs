//! `[http]` in deployment.toml, checked: where a component exporting
//! `wasi:http/incoming-handler` is served, and how much of it at once.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::time::Duration;

/// The most instances serving one module's requests at once.
pub const MAX_INSTANCES: u16 = 64;
/// The default per-request deadline.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How a module's incoming requests are served. Travels with the grants
/// (into the worker that serves them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServeGrant {
    /// The address the daemon listens on for this module.
    pub listen: SocketAddr,
    /// At most this many requests are handled at once, each in its own
    /// instance (and so at most this many instances, each under the
    /// module's memory limit); others wait for one to finish.
    pub instances: u16,
    /// A request whose response has not begun by then gets 504 and its
    /// instance is dropped.
    pub request_timeout: Duration,
}

/// Why an `[http]` value is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServeGrantError {
    #[error(
        "is not an address and port such as \"127.0.0.1:8080\" or \"[::]:8080\" (names are not resolved \
         here: give the address to listen on)"
    )]
    Listen,
    #[error("must be between 1 and {MAX_INSTANCES}")]
    Instances,
    #[error("must be at least 1ms")]
    Timeout,
}

impl ServeGrant {
    /// Checks the TOML values.
    pub fn new(
        listen: &str,
        instances: u16,
        request_timeout: Duration,
    ) -> Result<Self, (&'static str, ServeGrantError)> {
        let listen = listen
            .parse::<SocketAddr>()
            .map_err(|_| ("listen", ServeGrantError::Listen))?;
        if !(1..=MAX_INSTANCES).contains(&instances) {
            return Err(("instances", ServeGrantError::Instances));
        }
        if request_timeout < Duration::from_millis(1) {
            return Err(("request_timeout", ServeGrantError::Timeout));
        }
        Ok(Self {
            listen,
            instances,
            request_timeout,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_counts_and_timeouts_are_checked() {
        let ok = ServeGrant::new("127.0.0.1:8080", 4, DEFAULT_REQUEST_TIMEOUT).unwrap();
        assert_eq!(ok.listen.port(), 8080);
        assert!(ServeGrant::new("[::]:80", 1, Duration::from_millis(1)).is_ok());
        for bad in ["localhost:8080", "127.0.0.1", "8080", "", "127.0.0.1:99999"] {
            assert_eq!(
                ServeGrant::new(bad, 4, DEFAULT_REQUEST_TIMEOUT).unwrap_err(),
                ("listen", ServeGrantError::Listen),
                "{bad:?}"
            );
        }
        assert_eq!(
            ServeGrant::new("127.0.0.1:1", 0, DEFAULT_REQUEST_TIMEOUT)
                .unwrap_err()
                .0,
            "instances"
        );
        assert_eq!(
            ServeGrant::new("127.0.0.1:1", 65, DEFAULT_REQUEST_TIMEOUT)
                .unwrap_err()
                .0,
            "instances"
        );
        assert_eq!(
            ServeGrant::new("127.0.0.1:1", 1, Duration::ZERO).unwrap_err().0,
            "request_timeout"
        );
    }
}
