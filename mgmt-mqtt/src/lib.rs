//! Arcella over MQTT: the device agent (commands, presence, reported
//! state, desired state and artifact transfer), the broker connection
//! settings (URL, credentials, TLS) and the operator's client. Topic
//! layout and payloads: docs/mqtt.md.

pub mod agent;
pub mod bridge;
pub mod broker;
pub mod deploy;
pub mod device;
pub mod gate;
pub mod json;
pub mod operator;
pub mod reconcile;
mod report;
pub mod rollout;
#[cfg(feature = "tls")]
mod tls;
pub mod topics;
pub mod wire;

/// The MQTT client this crate is built on, for callers building options.
pub use rumqttc;
