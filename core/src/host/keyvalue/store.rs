//! One module's key-value state: a redb database file of its own, so a
//! damaged file costs one module its state and no other. Buckets are
//! tables (`bucket:NAME`); the bytes of keys and values the module keeps
//! are counted in a table of their own (`arcella:meta`, key `used`) in the
//! same transaction as every write, so the quota can never drift.
//!
//! Every write is one redb write transaction committed with redb's default
//! durability (fsync before `commit` returns): a write the guest saw
//! succeed survives a power cut. Blocking; callers off an executor use
//! `crate::offload::offload`.

use crate::protocol::host_call::{KvError, KvReply, KvRequest, MAX_HOST_PAYLOAD};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, TableError};
use std::path::{Path, PathBuf};

const META: TableDefinition<'static, &str, u64> = TableDefinition::new("arcella:meta");
const USED: &str = "used";

/// Why a module's database could not be opened.
#[derive(Debug, thiserror::Error)]
#[error(
    "the key-value database {path} cannot be opened ({source}); restore the file from a backup, \
     or delete the module's state with `arcella remove --purge-state {module}`"
)]
pub struct OpenError {
    pub path: PathBuf,
    pub module: String,
    #[source]
    pub source: redb::DatabaseError,
}

/// One entry, as the operator's `kv export`/`import` carry it.
pub type Entry = (String, Vec<u8>);

/// A module's database.
pub struct ModuleStore {
    db: Database,
    path: PathBuf,
}

impl std::fmt::Debug for ModuleStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModuleStore").field("path", &self.path).finish()
    }
}

fn table_name(bucket: &str) -> String {
    format!("bucket:{bucket}")
}

/// The size a key-value pair counts against the quota.
fn weight(key: &str, value: &[u8]) -> u64 {
    (key.len() + value.len()) as u64
}

impl ModuleStore {
    /// Opens (or creates) `path` for `module`. Its directory must exist.
    pub fn open(path: &Path, module: &str) -> Result<Self, OpenError> {
        let db = Database::create(path).map_err(|source| OpenError {
            path: path.to_owned(),
            module: module.to_owned(),
            source,
        })?;
        Ok(Self {
            db,
            path: path.to_owned(),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn fail(&self, e: impl std::fmt::Display) -> KvError {
        KvError::Other(format!("key-value database {}: {e}", self.path.display()))
    }

    /// Bytes of keys and values kept, all buckets together.
    pub fn used(&self) -> Result<u64, KvError> {
        let txn = self.db.begin_read().map_err(|e| self.fail(e))?;
        match txn.open_table(META) {
            Ok(meta) => Ok(meta.get(USED).map_err(|e| self.fail(e))?.map_or(0, |v| v.value())),
            Err(TableError::TableDoesNotExist(_)) => Ok(0),
            Err(e) => Err(self.fail(e)),
        }
    }

    /// Serves one guest request (already checked against the grant and
    /// the size limits). `quota` bounds the bytes kept.
    pub fn apply(&self, request: KvRequest, quota: u64) -> Result<KvReply, KvError> {
        match request {
            KvRequest::Open { .. } => Ok(KvReply::Done),
            KvRequest::Get { bucket, key } => self.read(&bucket, |t| {
                let Some(t) = t else { return Ok(KvReply::Value(None)) };
                Ok(KvReply::Value(t.get(key.as_str())?.map(|v| v.value().to_vec())))
            }),
            KvRequest::Exists { bucket, key } => self.read(&bucket, |t| {
                let Some(t) = t else { return Ok(KvReply::Exists(false)) };
                Ok(KvReply::Exists(t.get(key.as_str())?.is_some()))
            }),
            KvRequest::GetMany { bucket, keys } => self.read(&bucket, |t| {
                let mut budget = 0usize;
                let mut values = Vec::with_capacity(keys.len());
                for key in keys {
                    let value = match t {
                        Some(t) => t.get(key.as_str())?.map(|v| v.value().to_vec()),
                        None => None,
                    };
                    budget += key.len() + value.as_ref().map_or(0, Vec::len) + 8;
                    if budget > MAX_HOST_PAYLOAD - 64 {
                        return Err(Failure::Kv(KvError::Other(format!(
                            "the values asked for take more than {MAX_HOST_PAYLOAD} bytes, what one key-value \
                             reply may carry; ask for fewer keys at a time"
                        ))));
                    }
                    values.push(value.map(|v| (key, v)));
                }
                Ok(KvReply::Values(values))
            }),
            KvRequest::ListKeys { bucket, cursor } => self.read(&bucket, |t| {
                let Some(t) = t else {
                    return Ok(KvReply::Keys {
                        keys: Vec::new(),
                        cursor: None,
                    });
                };
                let skip = usize::try_from(cursor.unwrap_or(0)).unwrap_or(usize::MAX);
                let mut keys = Vec::new();
                let mut budget = 0usize;
                let mut next = None;
                for (i, item) in t.iter()?.enumerate().skip(skip) {
                    let (key, _) = item?;
                    let key = key.value().to_owned();
                    budget += key.len() + 3;
                    if budget > MAX_HOST_PAYLOAD - 64 {
                        next = Some(i as u64);
                        break;
                    }
                    keys.push(key);
                }
                Ok(KvReply::Keys { keys, cursor: next })
            }),
            KvRequest::Set { bucket, key, value } => self.write(&bucket, quota, |t, delta| {
                set(t, delta, &key, &value)?;
                Ok(KvReply::Done)
            }),
            KvRequest::SetMany { bucket, entries } => self.write(&bucket, quota, |t, delta| {
                for (key, value) in &entries {
                    set(t, delta, key, value)?;
                }
                Ok(KvReply::Done)
            }),
            KvRequest::Delete { bucket, key } => self.write(&bucket, quota, |t, delta| {
                delete(t, delta, &key)?;
                Ok(KvReply::Done)
            }),
            KvRequest::DeleteMany { bucket, keys } => self.write(&bucket, quota, |t, delta| {
                for key in &keys {
                    delete(t, delta, key)?;
                }
                Ok(KvReply::Done)
            }),
            KvRequest::Increment { bucket, key, delta: by } => self.write(&bucket, quota, |t, delta| {
                let now = match t.get(key.as_str())? {
                    None => 0,
                    Some(v) => parse_counter(&key, v.value())?,
                };
                let next = now
                    .checked_add(by)
                    .ok_or_else(|| KvError::Other(format!("incrementing {key:?} ({now}) by {by} overflows a u64")))?;
                set(t, delta, &key, next.to_string().as_bytes())?;
                Ok(KvReply::Number(next))
            }),
        }
    }

    /// Keys of `bucket` after `after`, at most `budget` bytes of them;
    /// the flag says whether more remain (the operator's `kv list`).
    pub fn keys_after(&self, bucket: &str, after: Option<&str>, budget: usize) -> Result<(Vec<String>, bool), KvError> {
        let (entries, more) = self.page(bucket, after, budget, false)?;
        Ok((entries.into_iter().map(|(k, _)| k).collect(), more))
    }

    /// Entries of `bucket` after `after`, at most `budget` bytes (the
    /// operator's `kv export`).
    pub fn entries_after(
        &self,
        bucket: &str,
        after: Option<&str>,
        budget: usize,
    ) -> Result<(Vec<Entry>, bool), KvError> {
        self.page(bucket, after, budget, true)
    }

    fn page(
        &self,
        bucket: &str,
        after: Option<&str>,
        budget: usize,
        values: bool,
    ) -> Result<(Vec<Entry>, bool), KvError> {
        self.read(bucket, |t| {
            let Some(t) = t else { return Ok((Vec::new(), false)) };
            let range = match after {
                Some(after) => t.range::<&str>((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded))?,
                None => t.iter()?,
            };
            let mut out = Vec::new();
            let mut used = 0usize;
            for item in range {
                let (key, value) = item?;
                let value = if values { value.value().to_vec() } else { Vec::new() };
                let key = key.value().to_owned();
                used += key.len() + value.len() + 8;
                if used > budget && !out.is_empty() {
                    return Ok((out, true));
                }
                out.push((key, value));
            }
            Ok((out, false))
        })
    }

    /// Sets every entry in one transaction (the operator's `kv import`):
    /// all or nothing, within the quota.
    pub fn import(&self, bucket: &str, entries: &[Entry], quota: u64) -> Result<(), KvError> {
        self.write(bucket, quota, |t, delta| {
            for (key, value) in entries {
                set(t, delta, key, value)?;
            }
            Ok(())
        })
    }

    /// One read transaction on `bucket`; `f` gets `None` when the bucket
    /// was never written.
    fn read<T>(
        &self,
        bucket: &str,
        f: impl FnOnce(Option<&redb::ReadOnlyTable<&str, &[u8]>>) -> Result<T, Failure>,
    ) -> Result<T, KvError> {
        let txn = self.db.begin_read().map_err(|e| self.fail(e))?;
        let name = table_name(bucket);
        match txn.open_table(TableDefinition::<&str, &[u8]>::new(&name)) {
            Ok(table) => f(Some(&table)),
            Err(TableError::TableDoesNotExist(_)) => f(None),
            Err(e) => return Err(self.fail(e)),
        }
        .map_err(|e| e.into_kv(self))
    }

    /// One write transaction on `bucket`; `f` adds the change in bytes
    /// kept to its `delta`. Over `quota`, nothing is committed.
    fn write<T>(
        &self,
        bucket: &str,
        quota: u64,
        f: impl FnOnce(&mut redb::Table<&str, &[u8]>, &mut i64) -> Result<T, Failure>,
    ) -> Result<T, KvError> {
        let txn = self.db.begin_write().map_err(|e| self.fail(e))?;
        let name = table_name(bucket);
        let mut delta = 0i64;
        let out = {
            let mut table = txn
                .open_table(TableDefinition::<&str, &[u8]>::new(&name))
                .map_err(|e| self.fail(e))?;
            f(&mut table, &mut delta).map_err(|e| e.into_kv(self))?
        };
        {
            let mut meta = txn.open_table(META).map_err(|e| self.fail(e))?;
            let used = meta.get(USED).map_err(|e| self.fail(e))?.map_or(0, |v| v.value());
            let now = used.saturating_add_signed(delta);
            if delta > 0 && now > quota {
                // Dropping the transaction aborts it: nothing is written.
                return Err(KvError::Other(format!(
                    "quota exceeded: this write needs {delta} more bytes, the module keeps {used} of its {quota} \
                     ([capabilities.keyvalue] quota); delete keys, or raise the quota"
                )));
            }
            meta.insert(USED, now).map_err(|e| self.fail(e))?;
        }
        txn.commit().map_err(|e| self.fail(e))?;
        Ok(out)
    }
}

/// An error inside a transaction: redb's, or one to give the guest as is.
enum Failure {
    Storage(redb::StorageError),
    Kv(KvError),
}

impl From<redb::StorageError> for Failure {
    fn from(e: redb::StorageError) -> Self {
        Self::Storage(e)
    }
}

impl From<KvError> for Failure {
    fn from(e: KvError) -> Self {
        Self::Kv(e)
    }
}

impl Failure {
    fn into_kv(self, store: &ModuleStore) -> KvError {
        match self {
            Self::Storage(e) => store.fail(e),
            Self::Kv(e) => e,
        }
    }
}

fn set(t: &mut redb::Table<&str, &[u8]>, delta: &mut i64, key: &str, value: &[u8]) -> Result<(), Failure> {
    let old = t.insert(key, value)?.map(|old| weight(key, old.value()));
    *delta += weight(key, value) as i64 - old.unwrap_or(0) as i64;
    Ok(())
}

fn delete(t: &mut redb::Table<&str, &[u8]>, delta: &mut i64, key: &str) -> Result<(), Failure> {
    if let Some(old) = t.remove(key)? {
        *delta -= weight(key, old.value()) as i64;
    }
    Ok(())
}

/// A counter as `increment` keeps it: the decimal digits of a u64 (as
/// wasmtime's own in-memory store does).
fn parse_counter(key: &str, bytes: &[u8]) -> Result<u64, KvError> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| {
            KvError::Other(format!(
                "the value of {key:?} is not a counter (decimal digits of a u64)"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(bucket: &str, key: &str, value: &[u8]) -> KvRequest {
        KvRequest::Set {
            bucket: bucket.into(),
            key: key.into(),
            value: value.to_vec(),
        }
    }

    #[test]
    fn quota_counts_keys_and_values_and_a_batch_over_it_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = ModuleStore::open(&dir.path().join("m.redb"), "m").unwrap();
        store.apply(set("a", "k1", &[0; 100]), 1000).unwrap();
        assert_eq!(store.used().unwrap(), 102);
        // Overwriting counts the difference; another bucket counts too.
        store.apply(set("a", "k1", &[0; 10]), 1000).unwrap();
        store.apply(set("b", "k2", &[0; 10]), 1000).unwrap();
        assert_eq!(store.used().unwrap(), 24);
        let batch = KvRequest::SetMany {
            bucket: "a".into(),
            entries: (0..10).map(|i| (format!("x{i}"), vec![0; 100])).collect(),
        };
        let e = store.apply(batch, 1000).unwrap_err().to_string();
        assert!(
            e.starts_with("quota exceeded") && e.contains("[capabilities.keyvalue] quota"),
            "{e}"
        );
        assert_eq!(store.used().unwrap(), 24, "nothing of the batch was written");
        let listed = store
            .apply(
                KvRequest::ListKeys {
                    bucket: "a".into(),
                    cursor: None,
                },
                1000,
            )
            .unwrap();
        assert_eq!(
            listed,
            KvReply::Keys {
                keys: vec!["k1".into()],
                cursor: None
            }
        );
        // Deleting gives the bytes back.
        store
            .apply(
                KvRequest::Delete {
                    bucket: "a".into(),
                    key: "k1".into(),
                },
                1000,
            )
            .unwrap();
        assert_eq!(store.used().unwrap(), 12);
    }

    #[test]
    fn increment_keeps_decimal_digits_and_refuses_what_is_not_a_counter() {
        let dir = tempfile::tempdir().unwrap();
        let store = ModuleStore::open(&dir.path().join("m.redb"), "m").unwrap();
        let inc = |delta| KvRequest::Increment {
            bucket: "a".into(),
            key: "c".into(),
            delta,
        };
        assert_eq!(store.apply(inc(5), 1000).unwrap(), KvReply::Number(5));
        assert_eq!(store.apply(inc(2), 1000).unwrap(), KvReply::Number(7));
        let got = store.apply(
            KvRequest::Get {
                bucket: "a".into(),
                key: "c".into(),
            },
            1000,
        );
        assert_eq!(got.unwrap(), KvReply::Value(Some(b"7".to_vec())));
        assert!(
            store
                .apply(inc(u64::MAX), 1000)
                .unwrap_err()
                .to_string()
                .contains("overflows")
        );
        store.apply(set("a", "c", b"abc"), 1000).unwrap();
        assert!(
            store
                .apply(inc(1), 1000)
                .unwrap_err()
                .to_string()
                .contains("not a counter")
        );
    }

    #[test]
    fn keys_come_in_pages_with_a_cursor() {
        let dir = tempfile::tempdir().unwrap();
        let store = ModuleStore::open(&dir.path().join("m.redb"), "m").unwrap();
        let entries: Vec<_> = (0..40)
            .map(|i| (format!("{i:03}{}", "k".repeat(1000)), Vec::new()))
            .collect();
        store.import("a", &entries, 1 << 20).unwrap();
        let mut cursor = None;
        let mut all = Vec::new();
        loop {
            let KvReply::Keys { keys, cursor: next } = store
                .apply(
                    KvRequest::ListKeys {
                        bucket: "a".into(),
                        cursor,
                    },
                    1 << 20,
                )
                .unwrap()
            else {
                panic!("not keys");
            };
            assert!(crate::protocol::host_call::fits(
                &crate::protocol::host_call::HostReply::KeyValue(Ok(KvReply::Keys {
                    keys: keys.clone(),
                    cursor: next
                }))
            ));
            all.extend(keys);
            match next {
                Some(n) => cursor = Some(n),
                None => break,
            }
        }
        assert_eq!(all.len(), 40);
        let (page, more) = store.keys_after("a", Some(&all[38]), 1 << 20).unwrap();
        assert_eq!((page, more), (vec![all[39].clone()], false));
    }

    #[test]
    fn a_file_that_is_not_a_database_is_refused_naming_it_and_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.redb");
        std::fs::write(&path, vec![0xa5; 8192]).unwrap();
        let e = ModuleStore::open(&path, "m").unwrap_err().to_string();
        assert!(
            e.contains(&path.display().to_string()) && e.contains("arcella remove --purge-state m"),
            "{e}"
        );
    }
}
