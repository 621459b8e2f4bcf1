//! Arcella over MQTT: the device agent (commands, presence, reported
//! state, desired state and artifact transfer) and the operator's client.
//! Topic layout and payloads: docs/mqtt.md.

pub mod agent;
pub mod device;
pub mod reconcile;
pub mod topics;
pub mod wire;
