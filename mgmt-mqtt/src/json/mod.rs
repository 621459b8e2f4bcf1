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
/// The leaf of `arcella/v1/group/<G>/json/`: a staged rollout's progress.
pub const ROLLOUT: &str = "rollout";

/// The largest JSON payload sent: the agent's MQTT client refuses (and
/// drops its connection over) a packet past the frame limit plus 1 KiB.
pub const MAX_PAYLOAD: usize = arcella_core::protocol::frame::MAX_FRAME_LEN;

/// Publishes `view` on `<base>/json/<leaf>` (QoS 1 and retained, or QoS
/// 0 for events), cut to [`MAX_PAYLOAD`] by [`bounded`]. A view that
/// cannot be encoded is a bug: logged, not sent.
pub fn publish<T: Serialize>(client: &Client, topics: &DeviceTopics, leaf: &str, view: &T) {
    let Some(payload) = bounded(view, MAX_PAYLOAD) else {
        log::error!("cannot encode the JSON mirror's {leaf} within {MAX_PAYLOAD} bytes; not sent");
        return;
    };
    let (qos, retain) = if leaf == EVENTS {
        (QoS::AtMostOnce, false)
    } else {
        (QoS::AtLeastOnce, true)
    };
    let _ = client.publish(topics.json(leaf), qos, retain, payload);
}

/// `view` as JSON of at most `limit` bytes. A device with many modules
/// and long errors can outgrow it: then modules are left out of the
/// `modules` object, last first, and `modules_omitted` counts them (the
/// module count stays whole). `None`: it cannot be made to fit.
pub fn bounded<T: Serialize>(view: &T, limit: usize) -> Option<Vec<u8>> {
    let payload = serde_json::to_vec(view).ok()?;
    if payload.len() <= limit {
        return Some(payload);
    }
    let mut value = serde_json::to_value(view).ok()?;
    let modules = value.get_mut("modules")?.as_object_mut()?;
    let mut sizes: Vec<(String, usize)> = modules
        .iter()
        .map(|(id, m)| (id.clone(), id.len() + m.to_string().len() + 4))
        .collect();
    // What must go: the excess, and room for the count.
    let mut excess = payload.len() - limit + r#","modules_omitted":4294967295"#.len();
    let mut omitted = 0u64;
    while excess > 0 {
        let (id, size) = sizes.pop()?;
        modules.remove(&id);
        excess = excess.saturating_sub(size);
        omitted += 1;
    }
    value.as_object_mut()?.insert("modules_omitted".into(), omitted.into());
    let payload = serde_json::to_vec(&value).ok()?;
    (payload.len() <= limit).then_some(payload)
}

/// Unix seconds now.
pub fn now_secs() -> u64 {
    arcella_core::protocol::now_ms() / 1000
}
