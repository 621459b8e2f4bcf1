//! `[http]` in deployment.toml: the component exports
//! `wasi:http/incoming-handler` and the daemon serves it.
//!
//! ```toml
//! kind = "service"
//! [http]
//! listen = "127.0.0.1:8080"   # required: the address and port to serve on
//! instances = 4               # requests handled at once (1–64), each in its own instance
//! request_timeout = "30s"     # a response not begun by then gets 504
//! ```

use super::locate::KeyPath;
use super::units::duration;
use crate::host::http::grant::{DEFAULT_REQUEST_TIMEOUT, ServeGrant};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The export a component served over HTTP must have.
pub const INCOMING_HANDLER: &str = "wasi:http/incoming-handler";

/// Requests handled at once unless `instances` says.
pub const DEFAULT_INSTANCES: u16 = 4;

/// `[http]` as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSection {
    pub listen: String,
    #[serde(default = "default_instances")]
    pub instances: u16,
    #[serde(default = "default_timeout", with = "duration")]
    pub request_timeout: Duration,
}

fn default_instances() -> u16 {
    DEFAULT_INSTANCES
}

fn default_timeout() -> Duration {
    DEFAULT_REQUEST_TIMEOUT
}

impl HttpSection {
    /// The checked grant; the error is the key under `http` and what to fix.
    pub fn grant(&self) -> Result<ServeGrant, (KeyPath, String)> {
        ServeGrant::new(&self.listen, self.instances, self.request_timeout).map_err(|(key, why)| {
            let shown = match key {
                "listen" => format!("= {:?} {why}", self.listen),
                "instances" => format!("= {} {why}", self.instances),
                _ => format!("{why}"),
            };
            (KeyPath::new("http").key(key), shown)
        })
    }
}
