//! Byte sizes (`65536`, `"64K"`, `"16M"`, `"1G"`; powers of 1024) and
//! durations (`"500ms"`, `"10s"`, `"2m"`, `"1h"`): parsing, formatting and
//! the serde helpers the manifest structs use.

use serde::de::{self, Unexpected, Visitor};
use serde::{Deserializer, Serializer};
use std::fmt;
use std::time::Duration;

const SIZE_EXPECTED: &str = "a byte size: an integer, or a string like \"64K\", \"16M\" or \"1G\" (powers of 1024)";
const DURATION_EXPECTED: &str = "a duration: a string like \"500ms\", \"10s\", \"2m\" or \"1h\"";

/// Parses a byte size with the syntax shared by the CLI and the daemon
/// config ([`crate::units::parse_bytes`]).
pub(super) fn parse_size(text: &str) -> Result<u64, String> {
    crate::units::parse_bytes(text).map_err(|e| match e {
        crate::units::UnitError::TooLarge(_) => format!("{text:?} is too large a byte size"),
        _ => format!("{text:?} is not {SIZE_EXPECTED}"),
    })
}

/// Formats `bytes` with the largest suffix that divides it exactly.
pub(super) fn format_size(bytes: u64) -> String {
    for (shift, suffix) in [(30, "G"), (20, "M"), (10, "K")] {
        if bytes != 0 && bytes.is_multiple_of(1 << shift) {
            return format!("{}{suffix}", bytes >> shift);
        }
    }
    bytes.to_string()
}

/// Parses a duration with the syntax shared by the CLI and the daemon
/// config ([`crate::units::parse_duration`]); zero is left to each key's
/// own rule.
pub(super) fn parse_duration(text: &str) -> Result<Duration, String> {
    crate::units::parse_duration(text).map_err(|e| match e {
        crate::units::UnitError::TooLarge(_) => format!("{text:?} is too long a duration"),
        _ => format!("{text:?} is not {DURATION_EXPECTED}"),
    })
}

/// Formats `duration` with the largest unit that divides it exactly;
/// `None` when it is not a whole number of milliseconds.
pub(super) fn format_duration(duration: Duration) -> Option<String> {
    if !duration.subsec_nanos().is_multiple_of(1_000_000) {
        return None;
    }
    let millis = u64::try_from(duration.as_millis()).ok()?;
    for (per, unit) in [(3_600_000, "h"), (60_000, "m"), (1_000, "s")] {
        if millis != 0 && millis.is_multiple_of(per) {
            return Some(format!("{}{unit}", millis / per));
        }
    }
    Some(format!("{millis}ms"))
}

struct SizeVisitor;

impl Visitor<'_> for SizeVisitor {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(SIZE_EXPECTED)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
        Ok(v)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
        u64::try_from(v).map_err(|_| E::invalid_value(Unexpected::Signed(v), &self))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
        parse_size(v).map_err(E::custom)
    }
}

struct DurationVisitor;

impl Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(DURATION_EXPECTED)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
        parse_duration(v).map_err(E::custom)
    }
}

/// serde helpers for `Option<u64>` byte sizes (serialized as integers).
pub(super) mod opt_size {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(v) => s.serialize_some(v),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        d.deserialize_any(super::SizeVisitor).map(Some)
    }
}

/// serde helpers for `Duration`s (serialized as strings like `"10s"`).
pub(super) mod duration {
    use super::*;

    pub fn serialize<S: Serializer>(value: &Duration, s: S) -> Result<S::Ok, S::Error> {
        match format_duration(*value) {
            Some(text) => s.serialize_str(&text),
            None => Err(serde::ser::Error::custom(format!(
                "{value:?} is not a whole number of milliseconds"
            ))),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        d.deserialize_any(DurationVisitor)
    }
}

/// serde helpers for `Option<Duration>`.
pub(super) mod opt_duration {
    use super::*;

    pub fn serialize<S: Serializer>(value: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(v) => super::duration::serialize(v, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        super::duration::deserialize(d).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("65536"), Ok(65536));
        assert_eq!(parse_size("64K"), Ok(64 * 1024));
        assert_eq!(parse_size("64k"), Ok(64 * 1024));
        assert_eq!(parse_size("16M"), Ok(16 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("0"), Ok(0));
        for bad in ["", "K", "64Q", "64 K", " 64K", "1.5M", "-1K", "1T", "0x10", "16MiBs"] {
            let e = parse_size(bad).unwrap_err();
            assert!(e.contains("is not a byte size"), "{bad:?}: {e}");
        }
        assert!(parse_size("99999999999999999G").unwrap_err().contains("too large"));
        assert!(parse_size("99999999999999999999999").is_err());
    }

    #[test]
    fn sizes_format_back() {
        for (n, text) in [
            (65536, "64K"),
            (16 << 20, "16M"),
            (1 << 30, "1G"),
            (1000, "1000"),
            (0, "0"),
        ] {
            assert_eq!(format_size(n), text);
            assert_eq!(parse_size(text), Ok(n));
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        for bad in ["", "s", "1.5s", "10 s", "10S", "1d", "-1s", "10sec", "1us", " 1s"] {
            let e = parse_duration(bad).unwrap_err();
            assert!(e.contains("is not a duration"), "{bad:?}: {e}");
        }
        assert!(parse_duration("99999999999999999h").unwrap_err().contains("too long"));
    }

    #[test]
    fn durations_format_back() {
        for (d, text) in [
            (1500, "1500ms"),
            (60_000, "1m"),
            (7_200_000, "2h"),
            (3000, "3s"),
            (0, "0ms"),
        ] {
            assert_eq!(format_duration(Duration::from_millis(d)).as_deref(), Some(text));
            assert_eq!(parse_duration(text), Ok(Duration::from_millis(d)));
        }
        assert_eq!(format_duration(Duration::from_micros(1500)), None);
    }
}
