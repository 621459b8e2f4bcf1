//! `[capabilities.messaging]`: the topics a module may publish on and the
//! ones its `wasi:messaging/incoming-handler` receives (docs/messaging.md).
//!
//! ```toml
//! [capabilities.messaging]
//! publish = ["sensors/+/temp"]    # MQTT filters; a publish must match one
//! subscribe = ["cmd/thermo/#"]    # delivered to the component's handler
//! queue = 64                      # messages kept for the handler (1–4096); the oldest go first
//! ```

use super::locate::KeyPath;
use crate::host::messaging::bus::{DEFAULT_QUEUE, MAX_QUEUE};
use crate::host::messaging::topic::check_filter;
use serde::{Deserialize, Serialize};

/// The most filters in `publish` or in `subscribe`.
pub const MAX_FILTERS: usize = 32;

/// The messaging grant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessagingCapability {
    #[serde(default)]
    pub publish: Vec<String>,
    #[serde(default)]
    pub subscribe: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<usize>,
}

impl MessagingCapability {
    /// The queue size in force.
    pub fn queue(&self) -> usize {
        self.queue.unwrap_or(DEFAULT_QUEUE)
    }

    /// The error is the key under `capabilities.messaging` and what to fix.
    pub(super) fn check(&self) -> Result<(), (KeyPath, String)> {
        for (key, filters) in [("publish", &self.publish), ("subscribe", &self.subscribe)] {
            if filters.len() > MAX_FILTERS {
                return Err((
                    KeyPath::new("messaging").key(key),
                    format!(
                        "has {} filters; at most {MAX_FILTERS} (a `#` or `+` filter covers many topics)",
                        filters.len()
                    ),
                ));
            }
            for (i, filter) in filters.iter().enumerate() {
                let at = KeyPath::new("messaging").key(key).index(i);
                check_filter(filter).map_err(|e| (at.clone(), format!("= {filter:?} {e}")))?;
                if filters[..i].contains(filter) {
                    return Err((at, format!("= {filter:?} is listed twice")));
                }
            }
        }
        let queue = self.queue();
        if !(1..=MAX_QUEUE).contains(&queue) {
            return Err((
                KeyPath::new("messaging").key("queue"),
                format!("= {queue} is out of range: give between 1 and {MAX_QUEUE} messages"),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::manifest::parse_deployment;

    fn error(text: &str) -> String {
        parse_deployment(text, "deployment.toml")
            .map(drop)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn the_docs_example_parses() {
        let d = parse_deployment(
            "[capabilities.messaging]\npublish = [\"sensors/+/temp\"]\nsubscribe = [\"cmd/thermo/#\"]\nqueue = 8\n",
            "deployment.toml",
        )
        .unwrap();
        let m = d.capabilities.messaging.unwrap();
        assert_eq!((m.publish.len(), m.subscribe.len(), m.queue()), (1, 1, 8));
    }

    #[test]
    fn bad_filters_name_the_key_and_the_fix() {
        let e = error("[capabilities.messaging]\nsubscribe = [\"cmd/#/x\"]\n");
        assert!(
            e.contains("capabilities.messaging.subscribe[0]") && e.contains("`#` may only end"),
            "{e}"
        );
        let e = error("[capabilities.messaging]\npublish = [\"a/b+\"]\n");
        assert!(e.contains("publish[0]") && e.contains("whole level"), "{e}");
        let e = error("[capabilities.messaging]\nqueue = 0\n");
        assert!(e.contains("queue") && e.contains("between 1 and 4096"), "{e}");
        let e = error("[capabilities.messaging]\nsubscrib = [\"a\"]\n");
        assert!(e.contains("subscrib"), "{e}");
    }
}
