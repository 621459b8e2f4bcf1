//! `[config]`: the runtime configuration a component reads through
//! `wasi:config/store`, and the rules every value must keep, whether it
//! comes from deployment.toml or from `arcella config set`.

use super::locate::KeyPath;
use std::collections::BTreeMap;

/// The longest configuration key, in bytes.
pub const MAX_CONFIG_KEY: usize = 128;
/// The longest configuration value, in bytes.
pub const MAX_CONFIG_VALUE: usize = 4096;
/// The most bytes a module's whole configuration (keys and values, as
/// postcard encodes them) may take: it travels to a worker in one message
/// of at most [`crate::protocol::worker::MAX_WORKER_MESSAGE`] (16 KiB), a
/// message of its own apart from the start message.
pub const MAX_CONFIG_BYTES: usize = 8 * 1024;

/// The key rule, for messages.
const KEY_RULE: &str = "a config key is 1 to 128 characters of A-Z, a-z, 0-9, '_', '-' and '.'";

/// Checks one key and its value. The error completes the sentence
/// "config key `KEY` …".
pub fn check_config_entry(key: &str, value: &str) -> Result<(), String> {
    check_config_key(key)?;
    if value.contains('\0') {
        return Err("has a value containing a NUL byte, which no guest can read back; remove it".to_owned());
    }
    if value.len() > MAX_CONFIG_VALUE {
        return Err(format!(
            "has a value of {} bytes, more than {MAX_CONFIG_VALUE}; keep large data in a file under a granted directory",
            value.len()
        ));
    }
    Ok(())
}

/// Checks a key on its own (also for `unset` and `get`).
pub fn check_config_key(key: &str) -> Result<(), String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
    if key.is_empty() {
        return Err(format!("is empty; {KEY_RULE}"));
    }
    if key.contains('\0') {
        return Err(format!("contains a NUL byte; {KEY_RULE}"));
    }
    if let Some(c) = key.chars().find(|c| !allowed(*c)) {
        return Err(format!("contains {c:?}; {KEY_RULE}"));
    }
    if key.len() > MAX_CONFIG_KEY {
        return Err(format!("is {} characters long; {KEY_RULE}", key.len()));
    }
    Ok(())
}

/// The encoded size of a configuration, as it travels to a worker.
pub fn config_bytes(values: &BTreeMap<String, String>) -> usize {
    postcard::experimental::serialized_size(values).unwrap_or(usize::MAX)
}

/// Checks a whole configuration: each entry, then the total size.
pub(super) fn check_config(values: &BTreeMap<String, String>) -> Result<(), (KeyPath, String)> {
    for (key, value) in values {
        check_config_entry(key, value).map_err(|m| (KeyPath::new("config").key(key), m))?;
    }
    check_config_size(values).map_err(|m| (KeyPath::new("config"), m))
}

/// The total-size rule on its own (a `set` may pass every entry check and
/// still make the whole too large).
pub fn check_config_size(values: &BTreeMap<String, String>) -> Result<(), String> {
    let size = config_bytes(values);
    if size > MAX_CONFIG_BYTES {
        return Err(format!(
            "takes {size} bytes, more than the {MAX_CONFIG_BYTES} bytes (8 KiB) a module's configuration may take \
             (it travels to a worker in one message); shorten values, or keep large data in a file"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_keep_their_rules() {
        check_config_entry("greeting", "hello").unwrap();
        check_config_entry("db.url-2_X", "").unwrap();
        for (key, value, words) in [
            ("", "v", "is empty"),
            ("a=b", "v", "contains '='"),
            ("a\0b", "v", "NUL"),
            ("k", "a\0b", "NUL"),
            ("k", &"v".repeat(MAX_CONFIG_VALUE + 1), "4096"),
            (&"k".repeat(MAX_CONFIG_KEY + 1), "v", "129 characters"),
        ] {
            let error = check_config_entry(key, value).unwrap_err();
            assert!(error.contains(words), "{key:?}: {error}");
        }
    }

    #[test]
    fn the_largest_configuration_allowed_fits_one_worker_message() {
        use crate::protocol::worker::{MAX_WORKER_MESSAGE, ToWorker, encode};
        let mut values = BTreeMap::new();
        let mut i = 0;
        while check_config_size(&values).is_ok() {
            values.insert(format!("{i:0>128}"), "v".repeat(MAX_CONFIG_VALUE));
            i += 1;
        }
        let over = check_config_size(&values).unwrap_err();
        assert!(over.contains("8192 bytes"), "{over}");
        values.pop_last();
        let message = ToWorker::Config {
            instance: u64::MAX,
            values: values.into_iter().collect(),
        };
        assert!(encode(&message).unwrap().len() <= MAX_WORKER_MESSAGE);
    }
}
