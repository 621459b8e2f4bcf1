//! serde helpers for the protocol's [`ModuleKind`] and [`Isolation`] as the
//! lowercase strings a manifest uses (`"command"`, `"worker"`, …). The
//! protocol's own derives stay untouched: they are postcard's wire format.

use crate::protocol::{Isolation, ModuleKind};
use serde::de::{self, Unexpected, Visitor};
use serde::{Deserializer, Serializer};
use std::fmt;

/// A string enumeration: each TOML spelling and its value.
struct Choice<T: 'static>(&'static [(&'static str, T)]);

impl<T: Copy + PartialEq> Choice<T> {
    fn name_of(&self, value: T) -> &'static str {
        self.0.iter().find(|(_, v)| *v == value).map_or("", |(name, _)| name)
    }
}

impl<T: Copy> Visitor<'_> for Choice<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (name, _)) in self.0.iter().enumerate() {
            match i {
                0 => {}
                i if i + 1 == self.0.len() => f.write_str(" or ")?,
                _ => f.write_str(", ")?,
            }
            write!(f, "\"{name}\"")?;
        }
        Ok(())
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        match self.0.iter().find(|(name, _)| *name == v) {
            Some((_, value)) => Ok(*value),
            None => Err(E::invalid_value(Unexpected::Str(v), &self)),
        }
    }
}

const KINDS: Choice<ModuleKind> = Choice(&[
    ("command", ModuleKind::Command),
    ("service", ModuleKind::Service),
    ("provider", ModuleKind::Provider),
]);
const ISOLATIONS: Choice<Isolation> = Choice(&[("main", Isolation::Main), ("worker", Isolation::Worker)]);

/// The TOML spelling of a [`ModuleKind`]: `"command"` or `"service"`.
pub fn kind_name(kind: ModuleKind) -> &'static str {
    KINDS.name_of(kind)
}

/// The TOML spelling of an [`Isolation`]: `"main"` or `"worker"`.
pub fn isolation_name(isolation: Isolation) -> &'static str {
    ISOLATIONS.name_of(isolation)
}

/// `#[serde(with = "kind")]` for [`ModuleKind`].
pub(super) mod kind {
    use super::*;

    pub fn serialize<S: Serializer>(value: &ModuleKind, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(kind_name(*value))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ModuleKind, D::Error> {
        d.deserialize_any(KINDS)
    }
}

/// `#[serde(with = "isolation")]` for [`Isolation`].
pub(super) mod isolation {
    use super::*;

    pub fn serialize<S: Serializer>(value: &Isolation, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(isolation_name(*value))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Isolation, D::Error> {
        d.deserialize_any(ISOLATIONS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(kind_name(ModuleKind::Command), "command");
        assert_eq!(kind_name(ModuleKind::Service), "service");
        assert_eq!(isolation_name(Isolation::Main), "main");
        assert_eq!(isolation_name(Isolation::Worker), "worker");
    }

    #[test]
    fn expecting_lists_the_choices() {
        struct Show<'a>(&'a Choice<ModuleKind>);
        impl fmt::Display for Show<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.expecting(f)
            }
        }
        assert_eq!(Show(&KINDS).to_string(), "\"command\", \"service\" or \"provider\"");
    }
}
