//! The sizes a key-value call may have. They are chosen so that any one
//! request or reply fits a worker message (16 KiB, see
//! [`crate::protocol::host_call::MAX_HOST_PAYLOAD`]), and they apply
//! in-process too, so a module behaves the same wherever it runs.

use crate::protocol::host_call::{HostRequest, KvError, KvRequest, MAX_HOST_PAYLOAD, fits};

/// The longest bucket name (the rule of module names: 1 to 63 of a-z, 0-9, `_`, `-`).
pub const MAX_BUCKET: usize = 63;
/// The longest key, bytes.
pub const MAX_KEY: usize = 1024;
/// The largest value, bytes: with the longest key and bucket it still fits
/// one 16 KiB worker message.
pub const MAX_VALUE: usize = 12 * 1024;

/// Checks one request before it is served (or forwarded): every key and
/// value within its limit, and the whole request within one message.
pub fn check(request: &KvRequest) -> Result<(), KvError> {
    let bucket = request.bucket();
    if bucket.len() > MAX_BUCKET {
        return Err(KvError::Other(format!(
            "bucket name of {} bytes is longer than {MAX_BUCKET}; bucket names are 1 to 63 characters",
            bucket.len()
        )));
    }
    match request {
        KvRequest::Open { .. } | KvRequest::ListKeys { .. } => {}
        KvRequest::Get { key, .. }
        | KvRequest::Delete { key, .. }
        | KvRequest::Exists { key, .. }
        | KvRequest::Increment { key, .. } => check_key(key)?,
        KvRequest::Set { key, value, .. } => {
            check_key(key)?;
            check_value(key, value)?;
        }
        KvRequest::GetMany { keys, .. } | KvRequest::DeleteMany { keys, .. } => {
            keys.iter().try_for_each(|k| check_key(k))?;
        }
        KvRequest::SetMany { entries, .. } => {
            for (key, value) in entries {
                check_key(key)?;
                check_value(key, value)?;
            }
        }
    }
    if !fits(&HostRequest::KeyValue(request.clone())) {
        return Err(KvError::Other(format!(
            "the batch is larger than {MAX_HOST_PAYLOAD} bytes, what one key-value call may carry; \
             split it into smaller batches"
        )));
    }
    Ok(())
}

fn check_key(key: &str) -> Result<(), KvError> {
    if key.is_empty() {
        return Err(KvError::Other("an empty key; give a key of 1 to 1024 bytes".to_owned()));
    }
    if key.len() > MAX_KEY {
        return Err(KvError::Other(format!(
            "key of {} bytes is longer than the {MAX_KEY}-byte limit; use a shorter key",
            key.len()
        )));
    }
    Ok(())
}

fn check_value(key: &str, value: &[u8]) -> Result<(), KvError> {
    if value.len() > MAX_VALUE {
        let shown: String = key.chars().take(64).collect();
        return Err(KvError::Other(format!(
            "value of {} bytes for key {shown:?} is larger than the {MAX_VALUE}-byte limit (12 KiB); \
             split it across several keys",
            value.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversize_keys_values_and_batches_are_refused_with_the_limit_named() {
        let set = |key: usize, value: usize| KvRequest::Set {
            bucket: "default".into(),
            key: "k".repeat(key),
            value: vec![0; value],
        };
        assert!(check(&set(MAX_KEY, MAX_VALUE)).is_ok());
        let e = check(&set(MAX_KEY + 1, 1)).unwrap_err().to_string();
        assert!(e.contains("1025 bytes") && e.contains("1024-byte limit"), "{e}");
        let e = check(&set(1, MAX_VALUE + 1)).unwrap_err().to_string();
        assert!(e.contains("12289 bytes") && e.contains("12288-byte limit"), "{e}");
        let e = check(&set(0, 1)).unwrap_err().to_string();
        assert!(e.contains("empty key"), "{e}");
        let batch = KvRequest::SetMany {
            bucket: "default".into(),
            entries: vec![("a".into(), vec![0; 8 * 1024]), ("b".into(), vec![0; 8 * 1024])],
        };
        let e = check(&batch).unwrap_err().to_string();
        assert!(e.contains("split it into smaller batches"), "{e}");
    }
}
