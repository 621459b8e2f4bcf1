//! `wasi:keyvalue@0.2.0-draft` (store, atomics, batch), the WIT wasmtime
//! 48.0.8's wasmtime-wasi-keyvalue ships, vendored in `wit/deps/keyvalue/`.
//! wasmtime's own implementation keeps an in-memory map; this one keeps each
//! module's buckets in a redb file of its own in the daemon (`store.rs`),
//! served in-process by [`backend::Served`] and from a worker through
//! [`proxy::Proxy`]. Limits: `limits.rs`.
//!
//! `increment` keeps a counter as decimal digits (as wasmtime's store does).
//! `set-many` and `delete-many` are all-or-nothing (one transaction), which
//! the WIT allows though it does not ask it.

pub mod backend;
pub mod limits;
pub mod proxy;
pub mod store;

use super::ComponentState;
use crate::protocol::host_call::{KvError, KvReply, KvRequest};
use wasmtime::component::{HasSelf, Linker, Resource};

mod generated {
    wasmtime::component::bindgen!({
        path: "../wit/deps/keyvalue",
        world: "wasi:keyvalue/imports",
        imports: { default: async | trappable },
        with: {
            "wasi:keyvalue/store.bucket": super::Bucket,
        },
    });
}

use generated::wasi::keyvalue::{atomics, batch, store as wit};

/// A bucket the guest opened: its name (every call names it again, and
/// the daemon checks the grant each time).
#[derive(Debug)]
pub struct Bucket {
    name: String,
}

/// Adds `wasi:keyvalue/{store,atomics,batch}@0.2.0-draft`.
pub fn link(linker: &mut Linker<ComponentState>) -> wasmtime::Result<()> {
    wit::add_to_linker::<_, HasSelf<ComponentState>>(linker, |s| s)?;
    atomics::add_to_linker::<_, HasSelf<ComponentState>>(linker, |s| s)?;
    batch::add_to_linker::<_, HasSelf<ComponentState>>(linker, |s| s)?;
    Ok(())
}

fn to_wit(e: KvError) -> wit::Error {
    match e {
        KvError::NoSuchStore => wit::Error::NoSuchStore,
        KvError::AccessDenied => wit::Error::AccessDenied,
        KvError::Other(message) => wit::Error::Other(message),
    }
}

fn unexpected(reply: &KvReply) -> wit::Error {
    wit::Error::Other(format!("the host answered with {reply:?}"))
}

impl ComponentState {
    fn bucket_name(&self, bucket: &Resource<Bucket>) -> wasmtime::Result<String> {
        Ok(self.table.get(bucket)?.name.clone())
    }

    /// The call, on a clone of the services: the state itself is not
    /// `Sync`, so no reference to it may be held across the await.
    fn kv(&self, request: KvRequest) -> impl Future<Output = Result<KvReply, wit::Error>> + Send + 'static {
        let services = self.services.clone();
        async move { services.kv_call(request).await.map_err(to_wit) }
    }
}

type Answer<T> = wasmtime::Result<Result<T, wit::Error>>;

impl wit::Host for ComponentState {
    async fn open(&mut self, identifier: String) -> Answer<Resource<Bucket>> {
        match self
            .kv(KvRequest::Open {
                bucket: identifier.clone(),
            })
            .await
        {
            Ok(_) => Ok(Ok(self.table.push(Bucket { name: identifier })?)),
            Err(e) => Ok(Err(e)),
        }
    }
}

impl wit::HostBucket for ComponentState {
    async fn get(&mut self, bucket: Resource<Bucket>, key: String) -> Answer<Option<Vec<u8>>> {
        let bucket = self.bucket_name(&bucket)?;
        Ok(match self.kv(KvRequest::Get { bucket, key }).await {
            Ok(KvReply::Value(value)) => Ok(value),
            Ok(other) => Err(unexpected(&other)),
            Err(e) => Err(e),
        })
    }

    async fn set(&mut self, bucket: Resource<Bucket>, key: String, value: Vec<u8>) -> Answer<()> {
        let bucket = self.bucket_name(&bucket)?;
        Ok(self.kv(KvRequest::Set { bucket, key, value }).await.map(drop))
    }

    async fn delete(&mut self, bucket: Resource<Bucket>, key: String) -> Answer<()> {
        let bucket = self.bucket_name(&bucket)?;
        Ok(self.kv(KvRequest::Delete { bucket, key }).await.map(drop))
    }

    async fn exists(&mut self, bucket: Resource<Bucket>, key: String) -> Answer<bool> {
        let bucket = self.bucket_name(&bucket)?;
        Ok(match self.kv(KvRequest::Exists { bucket, key }).await {
            Ok(KvReply::Exists(yes)) => Ok(yes),
            Ok(other) => Err(unexpected(&other)),
            Err(e) => Err(e),
        })
    }

    async fn list_keys(&mut self, bucket: Resource<Bucket>, cursor: Option<u64>) -> Answer<wit::KeyResponse> {
        let bucket = self.bucket_name(&bucket)?;
        Ok(match self.kv(KvRequest::ListKeys { bucket, cursor }).await {
            Ok(KvReply::Keys { keys, cursor }) => Ok(wit::KeyResponse { keys, cursor }),
            Ok(other) => Err(unexpected(&other)),
            Err(e) => Err(e),
        })
    }

    async fn drop(&mut self, bucket: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

impl atomics::Host for ComponentState {
    async fn increment(&mut self, bucket: Resource<Bucket>, key: String, delta: u64) -> Answer<u64> {
        let bucket = self.bucket_name(&bucket)?;
        Ok(match self.kv(KvRequest::Increment { bucket, key, delta }).await {
            Ok(KvReply::Number(n)) => Ok(n),
            Ok(other) => Err(unexpected(&other)),
            Err(e) => Err(e),
        })
    }
}

impl batch::Host for ComponentState {
    async fn get_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> Answer<Vec<Option<(String, Vec<u8>)>>> {
        let bucket = self.bucket_name(&bucket)?;
        Ok(match self.kv(KvRequest::GetMany { bucket, keys }).await {
            Ok(KvReply::Values(values)) => Ok(values),
            Ok(other) => Err(unexpected(&other)),
            Err(e) => Err(e),
        })
    }

    async fn set_many(&mut self, bucket: Resource<Bucket>, key_values: Vec<(String, Vec<u8>)>) -> Answer<()> {
        let bucket = self.bucket_name(&bucket)?;
        Ok(self
            .kv(KvRequest::SetMany {
                bucket,
                entries: key_values,
            })
            .await
            .map(drop))
    }

    async fn delete_many(&mut self, bucket: Resource<Bucket>, keys: Vec<String>) -> Answer<()> {
        let bucket = self.bucket_name(&bucket)?;
        Ok(self.kv(KvRequest::DeleteMany { bucket, keys }).await.map(drop))
    }
}
