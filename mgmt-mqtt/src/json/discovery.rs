//! Home Assistant MQTT discovery (`[mqtt] home_assistant = true`): the
//! device appears with a connectivity sensor (its presence), a module
//! count, and a sensor per module whose state is the module's state word,
//! with the module's JSON as attributes; all read the JSON mirror. Each
//! config is retained under `<prefix>/<component>/arcella_<device>/…/config`;
//! a removed module's config is cleared (an empty retained message, which
//! Home Assistant takes as "delete the entity"). The prefix and the
//! modules announced are kept in the fleet state directory, so one removed
//! while the daemon was down is cleared at the next start, and so is
//! everything announced once discovery is turned off or its prefix changes.

use crate::topics::DeviceTopics;
use arcella_core::protocol::DeviceReport;
use rumqttc::{Client, QoS};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::PathBuf;

/// What the device announced to Home Assistant, and where that is kept.
#[derive(Debug)]
pub struct Discovery {
    prefix: String,
    device: String,
    node: String,
    /// Module ids whose config is on the broker.
    announced: BTreeSet<String>,
    /// Whether the device's own entities went out in this run.
    device_announced: bool,
    file: PathBuf,
    /// Whether `file` holds `prefix` and `announced` as they are.
    saved: bool,
}

impl Discovery {
    /// Discovery under `prefix` (`None`: off). What an earlier run
    /// announced under another prefix, or at all when it is now off, is
    /// cleared first. `state_dir` keeps the record (file `home-assistant`).
    pub fn start(client: &Client, prefix: Option<&str>, device: &str, state_dir: PathBuf) -> Option<Self> {
        let file = state_dir.join("home-assistant");
        let earlier = Self::load(&file, device);
        match (earlier, prefix) {
            (Some(earlier), Some(prefix)) if earlier.prefix == prefix => return Some(earlier),
            (Some(earlier), _) => {
                earlier.clear(client);
                if let Err(e) = std::fs::remove_file(&file) {
                    log::warn!("cannot remove {}: {e}", file.display());
                }
            }
            (None, _) => {}
        }
        Some(Self::new(prefix?, device, file, BTreeSet::new(), false))
    }

    fn new(prefix: &str, device: &str, file: PathBuf, announced: BTreeSet<String>, saved: bool) -> Self {
        Self {
            prefix: prefix.to_owned(),
            device: device.to_owned(),
            node: format!("arcella_{device}"),
            announced,
            device_announced: false,
            file,
            saved,
        }
    }

    /// The record an earlier run left: `prefix <prefix>`, then one id a line.
    fn load(file: &std::path::Path, device: &str) -> Option<Self> {
        let text = std::fs::read_to_string(file).ok()?;
        let mut lines = text.lines();
        let prefix = lines.next()?.strip_prefix("prefix ")?;
        Some(Self::new(
            prefix,
            device,
            file.to_owned(),
            lines.map(str::to_owned).collect(),
            true,
        ))
    }

    /// Clears every config this record stands for: the device's own
    /// entities and each module's.
    fn clear(&self, client: &Client) {
        let topics = [
            self.config_topic("binary_sensor", "online"),
            self.config_topic("sensor", "modules"),
        ]
        .into_iter()
        .chain(
            self.announced
                .iter()
                .map(|id| self.config_topic("sensor", &module_object(id))),
        );
        topics.for_each(|topic| remove(client, topic));
    }

    /// The config topic of one entity.
    pub fn config_topic(&self, component: &str, object: &str) -> String {
        format!("{}/{component}/{}/{object}/config", self.prefix, self.node)
    }

    /// Announces the device (once a run) and every module of `report` not
    /// announced yet, and clears the modules no longer there.
    pub fn announce(&mut self, client: &Client, topics: &DeviceTopics, report: &DeviceReport) {
        let device = json!({
            "identifiers": [self.node],
            "name": self.device,
            "manufacturer": "Arcella",
            "model": format!("{} ({})", report.info.board, report.info.target),
            "sw_version": report.info.version,
        });
        let state = topics.json(super::STATE);
        let presence = topics.presence();
        if !self.device_announced {
            let online = json!({
                "name": "Online",
                "unique_id": format!("{}_online", self.node),
                "state_topic": presence,
                "payload_on": "online",
                "payload_off": "offline",
                "device_class": "connectivity",
                "device": device,
            });
            let modules = json!({
                "name": "Modules",
                "unique_id": format!("{}_modules", self.node),
                "state_topic": state,
                "value_template": "{{ value_json.module_count }}",
                "state_class": "measurement",
                "icon": "mdi:puzzle",
                "availability_topic": presence,
                "device": device,
            });
            self.send(client, "binary_sensor", "online", &online);
            self.send(client, "sensor", "modules", &modules);
            self.device_announced = true;
        }
        let now: BTreeSet<String> = report.modules.iter().map(|m| m.id.clone()).collect();
        for id in now.difference(&self.announced) {
            self.send(
                client,
                "sensor",
                &module_object(id),
                &module_config(&self.node, id, &state, &presence, &device),
            );
        }
        for gone in self.announced.difference(&now) {
            remove(client, self.config_topic("sensor", &module_object(gone)));
        }
        if now != self.announced || !self.saved {
            self.announced = now;
            self.save();
        }
    }

    fn send(&self, client: &Client, component: &str, object: &str, config: &Value) {
        let _ = client.publish(
            self.config_topic(component, object),
            QoS::AtLeastOnce,
            true,
            config.to_string(),
        );
    }

    /// Keeps the ids announced; a failure costs only a stale entity in
    /// Home Assistant after a restart, so it is logged, not fatal.
    fn save(&mut self) {
        let text: String = std::iter::once(format!("prefix {}\n", self.prefix))
            .chain(self.announced.iter().map(|id| format!("{id}\n")))
            .collect();
        let written = self
            .file
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&self.file, text));
        self.saved = written.is_ok();
        if let Err(e) = written {
            log::warn!(
                "cannot keep the modules announced to Home Assistant in {}: {e}",
                self.file.display()
            );
        }
    }
}

/// Clears one entity's retained config: Home Assistant deletes it.
fn remove(client: &Client, topic: String) {
    let _ = client.publish(topic, QoS::AtLeastOnce, true, Vec::new());
}

fn module_object(id: &str) -> String {
    format!("module_{id}")
}

/// A module's sensor. Ids follow the module-name rule (`a-z0-9_-`), so
/// they are safe inside the templates' quotes.
fn module_config(node: &str, id: &str, state: &str, presence: &str, device: &Value) -> Value {
    json!({
        "name": id,
        "unique_id": format!("{node}_module_{id}"),
        "state_topic": state,
        "value_template": format!(
            "{{{{ value_json.modules['{id}'].state if '{id}' in value_json.modules else 'removed' }}}}"
        ),
        "json_attributes_topic": state,
        "json_attributes_template": format!(
            "{{{{ value_json.modules['{id}'] | tojson if '{id}' in value_json.modules else '{{}}' }}}}"
        ),
        "icon": "mdi:puzzle-outline",
        "availability_topic": presence,
        "device": device,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_modules_sensor_reads_its_own_entry_of_the_state() {
        let device = json!({"identifiers": ["arcella_gw"]});
        let c = module_config("arcella_gw", "ticker", "arcella/v1/gw/json/state", "p", &device);
        assert_eq!(
            c["value_template"],
            "{{ value_json.modules['ticker'].state if 'ticker' in value_json.modules else 'removed' }}"
        );
        assert_eq!(c["unique_id"], "arcella_gw_module_ticker");
        assert_eq!(c["state_topic"], "arcella/v1/gw/json/state");
    }
}
