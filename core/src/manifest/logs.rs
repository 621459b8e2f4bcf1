//! `[logs]` in deployment.toml, and the level rule it shares with
//! `[mqtt] logs` in arcella.toml: which of a module's log lines are sent
//! to the fleet over MQTT (docs/mqtt.md, "Log forwarding").

use crate::protocol::LogLevel;
use serde::de::{self, Unexpected, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// `[logs]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogsSection {
    /// `"off"`, or the lowest level of this module's lines sent to the
    /// fleet; unset: the device's `[mqtt] logs` decides.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forward: Option<LogForward>,
}

/// Which lines go to the fleet: none, or those at a level or above (a
/// line's level is its `wasi:logging` level; stdout and the daemon's notes
/// are `info`, stderr `warn`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogForward {
    #[default]
    Off,
    AtLeast(LogLevel),
}

const CHOICES: &[(&str, LogForward)] = &[
    ("off", LogForward::Off),
    ("trace", LogForward::AtLeast(LogLevel::Trace)),
    ("debug", LogForward::AtLeast(LogLevel::Debug)),
    ("info", LogForward::AtLeast(LogLevel::Info)),
    ("warn", LogForward::AtLeast(LogLevel::Warn)),
    ("error", LogForward::AtLeast(LogLevel::Error)),
    ("critical", LogForward::AtLeast(LogLevel::Critical)),
];

impl LogForward {
    /// Whether a line at `level` is sent.
    pub fn admits(self, level: LogLevel) -> bool {
        match self {
            Self::Off => false,
            Self::AtLeast(floor) => level >= floor,
        }
    }

    /// The TOML spelling.
    pub fn name(self) -> &'static str {
        CHOICES.iter().find(|(_, v)| *v == self).map_or("off", |(n, _)| n)
    }
}

impl Serialize for LogForward {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

struct Choice;

impl Visitor<'_> for Choice {
    type Value = LogForward;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"off\", \"trace\", \"debug\", \"info\", \"warn\", \"error\" or \"critical\"")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<LogForward, E> {
        CHOICES
            .iter()
            .find(|(name, _)| *name == v)
            .map(|(_, value)| *value)
            .ok_or_else(|| E::invalid_value(Unexpected::Str(v), &self))
    }
}

impl<'de> Deserialize<'de> for LogForward {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(Choice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Doc {
        logs: LogsSection,
    }

    #[test]
    fn levels_admit_their_own_and_higher_and_off_admits_none() {
        let warn = LogForward::AtLeast(LogLevel::Warn);
        assert!(!warn.admits(LogLevel::Info));
        assert!(warn.admits(LogLevel::Warn));
        assert!(warn.admits(LogLevel::Critical));
        assert!(!LogForward::Off.admits(LogLevel::Critical));
        for (name, value) in CHOICES {
            assert_eq!(value.name(), *name);
        }
    }

    #[test]
    fn a_level_that_does_not_exist_is_named_with_the_choices() {
        let doc: Doc = toml::from_str("[logs]\nforward = \"warn\"\n").unwrap();
        assert_eq!(doc.logs.forward, Some(LogForward::AtLeast(LogLevel::Warn)));
        let err = toml::from_str::<Doc>("[logs]\nforward = \"loud\"\n")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("\"loud\"") && err.contains("\"off\", \"trace\""), "{err}");
        let err = toml::from_str::<Doc>("[logs]\nforwards = \"info\"\n")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("forwards"), "{err}");
    }
}
