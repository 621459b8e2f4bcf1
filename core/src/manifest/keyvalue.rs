//! `[capabilities.keyvalue]`: the `wasi:keyvalue` buckets a module may
//! open, and how many bytes of keys and values it may keep in them.
//!
//! ```toml
//! [capabilities.keyvalue]
//! buckets = ["default"]
//! quota = "1M"
//! ```

use super::locate::KeyPath;
use super::names::check_name;
use serde::{Deserialize, Serialize};

/// `quota` when none is given.
pub const DEFAULT_KV_QUOTA: u64 = 1 << 20;
/// The smallest `quota`.
pub const MIN_KV_QUOTA: u64 = 4096;
/// The largest `quota`: a module's state is one file on a small device.
pub const MAX_KV_QUOTA: u64 = 1 << 30;

/// The key-value grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyValueCapability {
    /// Bucket names (the rule of module names); default `["default"]`.
    #[serde(default = "default_buckets")]
    pub buckets: Vec<String>,
    /// Bytes of keys and values, all buckets together: an integer or
    /// `"64K"`/`"1M"`; default `"1M"`.
    #[serde(default, with = "super::units::opt_size")]
    pub quota: Option<u64>,
}

fn default_buckets() -> Vec<String> {
    vec!["default".to_owned()]
}

impl KeyValueCapability {
    /// The quota in force.
    pub fn quota(&self) -> u64 {
        self.quota.unwrap_or(DEFAULT_KV_QUOTA)
    }

    /// The error is the key under `capabilities.keyvalue` and what to fix.
    pub(super) fn check(&self) -> Result<(), (KeyPath, String)> {
        let at = |key: &str| KeyPath::new("keyvalue").key(key);
        if self.buckets.is_empty() {
            return Err((
                at("buckets"),
                "is empty; name at least one bucket, such as [\"default\"], or remove [capabilities.keyvalue]"
                    .to_owned(),
            ));
        }
        for (i, bucket) in self.buckets.iter().enumerate() {
            let at = KeyPath::new("keyvalue").key("buckets").index(i);
            check_name(bucket).map_err(|m| {
                (
                    at.clone(),
                    format!("= {bucket:?} {}", m.replace("module or group", "bucket")),
                )
            })?;
            if self.buckets[..i].contains(bucket) {
                return Err((at, format!("= {bucket:?} is listed twice")));
            }
        }
        let quota = self.quota();
        if !(MIN_KV_QUOTA..=MAX_KV_QUOTA).contains(&quota) {
            return Err((
                at("quota"),
                format!("= {quota} bytes is out of range: give between \"4K\" and \"1G\""),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::manifest::parse_deployment;

    #[test]
    fn a_keyvalue_grant_parses_with_sizes_and_defaults() {
        let d = parse_deployment(
            "[capabilities.keyvalue]\nbuckets = [\"default\", \"cache\"]\nquota = \"64K\"\n",
            "d.toml",
        )
        .unwrap();
        let kv = d.capabilities.keyvalue.unwrap();
        assert_eq!(kv.buckets, ["default", "cache"]);
        assert_eq!(kv.quota(), 64 * 1024);
        let d = parse_deployment("[capabilities.keyvalue]\n", "d.toml").unwrap();
        let kv = d.capabilities.keyvalue.unwrap();
        assert_eq!(
            (kv.buckets.as_slice(), kv.quota()),
            (["default".to_owned()].as_slice(), 1 << 20)
        );
        assert!(parse_deployment("", "d.toml").unwrap().capabilities.keyvalue.is_none());
    }

    #[test]
    fn bad_keyvalue_grants_name_the_key_and_the_fix() {
        for (text, expect) in [
            ("buckets = []", "capabilities.keyvalue.buckets"),
            ("buckets = [\"Bad Name\"]", "capabilities.keyvalue.buckets[0]"),
            ("buckets = [\"a\", \"a\"]", "listed twice"),
            ("quota = \"1K\"", "between \"4K\" and \"1G\""),
            ("quota = \"lots\"", "byte size"),
            ("bucket = [\"a\"]", "expected `buckets`"),
        ] {
            let e = parse_deployment(&format!("[capabilities.keyvalue]\n{text}\n"), "d.toml")
                .unwrap_err()
                .to_string();
            assert!(e.contains(expect), "{text}: {e}");
        }
    }
}
