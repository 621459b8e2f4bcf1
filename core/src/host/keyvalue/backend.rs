//! Who serves an instance's key-value calls: [`Served`] in the daemon
//! (the module's database and grant), or the worker's proxy
//! (`proxy.rs`), which forwards them to the daemon. The guest-facing code
//! (`mod.rs`) sees only the [`KeyValue`] trait.

use super::limits;
use super::store::ModuleStore;
use crate::host::{Capability, DenialSink};
use crate::protocol::host_call::{HostReply, KvError, KvReply, KvRequest, fits};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// A key-value call in progress.
pub type KvFuture<'a> = Pin<Box<dyn Future<Output = Result<KvReply, KvError>> + Send + 'a>>;

/// Serves key-value calls for one instance.
pub trait KeyValue: Send + Sync {
    fn call(&self, request: KvRequest) -> KvFuture<'_>;
}

/// What `[capabilities.keyvalue]` grants a module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvGrant {
    /// The buckets it may open.
    pub buckets: Vec<String>,
    /// The most bytes of keys and values it may keep, all buckets together.
    pub quota: u64,
}

/// The daemon's side: the module's own database, its grant, and where
/// refusals are reported. Every call is checked here (bucket, sizes), also
/// the ones a worker forwards: the worker is not trusted to have checked.
pub struct Served {
    pub store: Arc<ModuleStore>,
    pub grant: KvGrant,
    pub denials: Option<DenialSink>,
}

impl std::fmt::Debug for Served {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Served")
            .field("store", &self.store)
            .field("grant", &self.grant)
            .finish_non_exhaustive()
    }
}

impl Served {
    fn deny(&self, capability: Capability, detail: String) {
        if let Some(sink) = &self.denials {
            sink(crate::host::Denial { capability, detail });
        }
    }
}

impl KeyValue for Served {
    fn call(&self, request: KvRequest) -> KvFuture<'_> {
        Box::pin(async move {
            limits::check(&request)?;
            let bucket = request.bucket().to_owned();
            if !self.grant.buckets.contains(&bucket) {
                let verb = if matches!(request, KvRequest::Open { .. }) {
                    "open"
                } else {
                    "use"
                };
                self.deny(
                    Capability::KeyValue,
                    format!("{verb} bucket {bucket:?}: not in [capabilities.keyvalue] buckets"),
                );
                return Err(KvError::AccessDenied);
            }
            let store = self.store.clone();
            let quota = self.grant.quota;
            let reply = crate::offload::offload(move || store.apply(request, quota)).await;
            if let Err(KvError::Other(message)) = &reply
                && message.starts_with("quota exceeded")
            {
                self.deny(Capability::Quota, format!("keyvalue bucket {bucket:?}: {message}"));
            }
            let reply = reply?;
            if !fits(&HostReply::KeyValue(Ok(reply.clone()))) {
                return Err(KvError::Other(
                    "the reply is larger than one key-value call may carry; ask for less at a time".to_owned(),
                ));
            }
            Ok(reply)
        })
    }
}

/// The answer for an instance granted no key-value store at all.
pub fn ungranted(request: &KvRequest, denials: Option<&DenialSink>) -> Result<KvReply, KvError> {
    if let Some(sink) = denials {
        sink(crate::host::Denial {
            capability: Capability::KeyValue,
            detail: format!(
                "open bucket {:?}: the module has no [capabilities.keyvalue]",
                request.bucket()
            ),
        });
    }
    Err(KvError::AccessDenied)
}
