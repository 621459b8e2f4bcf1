//! The operator's `arcella kv` and `remove --purge-state`: a module's
//! key-value state, read and changed from outside while the module may be
//! running (redb: readers alongside one writer; the daemon holds one handle
//! per module, daemon/kvstores.rs). The guest's own limits apply, so what
//! an operator writes the guest can read back.

use super::{Supervisor, internal, not_found};
use crate::host::keyvalue::limits;
use crate::protocol::host_call::{KvError, KvRequest};
use crate::protocol::kv::KV_PAGE_BYTES;
use crate::protocol::{ErrorKind, KvAnswer, KvOp, RemoteError};

impl Supervisor {
    /// Serves one `arcella kv` operation. Blocking (the socket server runs
    /// it on its blocking pool).
    pub fn kv(&self, module: &str, bucket: &str, op: KvOp) -> Result<KvAnswer, RemoteError> {
        let grant = {
            let state = self.lock();
            let slot = state.modules.get(module).ok_or_else(|| not_found(module))?;
            slot.loaded
                .as_ref()
                .and_then(|l| l.manifests.deployment.capabilities.keyvalue.clone())
        };
        let Some(grant) = grant else {
            return Err(RemoteError::new(
                ErrorKind::BadRequest,
                format!(
                    "module `{module}` has no [capabilities.keyvalue] in its deployment.toml, so no key-value state"
                ),
            ));
        };
        if !grant.buckets.iter().any(|b| b == bucket) {
            return Err(RemoteError::new(
                ErrorKind::NotFound,
                format!(
                    "module `{module}` has no bucket {bucket:?}; its buckets are {:?} (choose one with --bucket)",
                    grant.buckets
                ),
            ));
        }
        let store = self
            .inner
            .kv
            .open(module)
            .map_err(|e| RemoteError::new(ErrorKind::Unavailable, e.to_string()))?;
        let quota = grant.quota();
        let bad = |e: KvError| match &e {
            KvError::Other(m) if m.starts_with("quota exceeded") => {
                RemoteError::new(ErrorKind::ResourceExhausted, m.clone())
            }
            KvError::Other(m) if m.starts_with("key-value database") => {
                RemoteError::new(ErrorKind::Internal, m.clone())
            }
            _ => RemoteError::new(ErrorKind::BadRequest, e.to_string()),
        };
        let bucket = bucket.to_owned();
        match op {
            KvOp::List { after } => {
                let (keys, more) = store
                    .keys_after(&bucket, after.as_deref(), KV_PAGE_BYTES)
                    .map_err(bad)?;
                Ok(KvAnswer::Keys { keys, more })
            }
            KvOp::Export { after } => {
                let (entries, more) = store
                    .entries_after(&bucket, after.as_deref(), KV_PAGE_BYTES)
                    .map_err(bad)?;
                Ok(KvAnswer::Entries { entries, more })
            }
            KvOp::Get { key } => {
                let request = KvRequest::Get { bucket, key };
                limits::check(&request).map_err(bad)?;
                match store.apply(request, quota).map_err(bad)? {
                    crate::protocol::host_call::KvReply::Value(v) => Ok(KvAnswer::Value(v)),
                    other => Err(internal("kv get", format!("{other:?}"))),
                }
            }
            KvOp::Set { key, value } => {
                let request = KvRequest::Set { bucket, key, value };
                limits::check(&request).map_err(bad)?;
                store.apply(request, quota).map_err(bad)?;
                Ok(KvAnswer::Done { count: 1 })
            }
            KvOp::Delete { key } => {
                let request = KvRequest::Delete { bucket, key };
                limits::check(&request).map_err(bad)?;
                store.apply(request, quota).map_err(bad)?;
                Ok(KvAnswer::Done { count: 1 })
            }
            KvOp::Import { entries } => {
                // Each entry within the guest's limits (a batch of any
                // size: it does not cross the worker link).
                for (key, value) in &entries {
                    limits::check(&KvRequest::Set {
                        bucket: bucket.clone(),
                        key: key.clone(),
                        value: value.clone(),
                    })
                    .map_err(bad)?;
                }
                store.import(&bucket, &entries, quota).map_err(bad)?;
                Ok(KvAnswer::Done {
                    count: u32::try_from(entries.len()).unwrap_or(u32::MAX),
                })
            }
        }
    }

    /// `arcella remove --purge-state`: removes the module if it is
    /// installed, then deletes its key-value state. State left by a module
    /// removed earlier can be purged too.
    pub fn remove_purging_state(&self, id: &str) -> Result<(), RemoteError> {
        let installed = self.lock().modules.contains_key(id);
        if installed {
            self.remove(id)?;
        } else if !self.inner.kv.exists(id) {
            return Err(not_found(id));
        }
        self.inner
            .kv
            .purge(id)
            .map_err(|e| internal("purging the module's state", e))?;
        Ok(())
    }
}
