//! The JSON mirror: what the device publishes in postcard for Arcella's
//! own tools, again as JSON on `arcella/v1/<device>/json/…` for tools
//! that know nothing of Arcella (mosquitto_sub, Node-RED, Grafana, Home
//! Assistant). Payloads: [`views`]; schema: `docs/mqtt-v1.schema.json`;
//! Home Assistant discovery: [`discovery`]. Presence stays the plain
//! `online`/`offline` of `<base>/presence` (the last will can only be one
//! message), which is also Home Assistant's availability convention.

pub mod discovery;
pub mod views;

use crate::topics::DeviceTopics;
use rumqttc::{Client, QoS};
use serde::Serialize;
use std::time::Duration;

/// `[mqtt] json`, `telemetry`, `home_assistant*` as the agent uses them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonSettings {
    /// How often telemetry goes out (`None`: never).
    pub telemetry: Option<Duration>,
    /// Home Assistant's discovery prefix, when discovery is on.
    pub home_assistant: Option<String>,
}

/// The leaves of `<base>/json/`.
pub const STATE: &str = "state";
pub const CONVERGENCE: &str = "convergence";
pub const TELEMETRY: &str = "telemetry";
pub const EVENTS: &str = "events";

/// Publishes `view` on `<base>/json/<leaf>` (QoS 1 and retained, or QoS
/// 0 for events). A view that cannot be encoded is a bug: logged, not sent.
pub fn publish<T: Serialize>(client: &Client, topics: &DeviceTopics, leaf: &str, view: &T) {
    let payload = match serde_json::to_vec(view) {
        Ok(payload) => payload,
        Err(e) => {
            log::error!("cannot encode the JSON mirror's {leaf}: {e}");
            return;
        }
    };
    let (qos, retain) = if leaf == EVENTS {
        (QoS::AtMostOnce, false)
    } else {
        (QoS::AtLeastOnce, true)
    };
    let _ = client.publish(topics.json(leaf), qos, retain, payload);
}

/// Unix seconds now.
pub fn now_secs() -> u64 {
    arcella_core::protocol::now_ms() / 1000
}
