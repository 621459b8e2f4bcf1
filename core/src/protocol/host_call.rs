//! Host calls from a worker to the daemon: a guest in a worker calls a host
//! interface whose state lives in the daemon (key-value today; config and
//! audit later), the worker forwards the call as
//! [`FromWorker::HostCall`](super::worker::FromWorker::HostCall) and awaits
//! [`ToWorker::HostReply`](super::worker::ToWorker::HostReply) with the same
//! `call` number. The worker never opens the daemon's state itself.
//!
//! Every request and reply fits one worker message (16 KiB): the limits
//! below are enforced on both sides of the boundary, and in-process guests
//! get the same limits so a module behaves the same wherever it runs.

use serde::{Deserialize, Serialize};

/// The most bytes a [`HostRequest`] or [`HostReply`] may take encoded; the
/// rest of the 16 KiB message (instance id, call number, variant tags)
/// fits in what is left.
pub const MAX_HOST_PAYLOAD: usize = 15 * 1024;

/// Host calls one worker may have waiting for replies at once. A guest
/// calls synchronously, so each instance has at most one in flight; the
/// bound protects the daemon from a worker that floods it.
pub const MAX_CALLS_IN_FLIGHT: usize = 64;

/// A call the worker forwards.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum HostRequest {
    KeyValue(KvRequest),
    /// A typed call to the provider linked to the instance's import.
    Call {
        import: String,
        function: String,
        args: Vec<crate::host::typed::value::WireVal>,
    },
    /// `wasi:messaging` (protocol/messaging.rs).
    Messaging(super::messaging::MsgRequest),
}

/// The daemon's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum HostReply {
    KeyValue(Result<KvReply, KvError>),
    Call(Result<Vec<crate::host::typed::value::WireVal>, crate::host::typed::CallError>),
    Messaging(Result<(), super::messaging::MsgError>),
    /// The daemon would not serve the call at all (unknown instance, too
    /// many calls in flight, a request that does not fit).
    Refused(String),
}

/// One `wasi:keyvalue` operation on a bucket of the calling module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvRequest {
    Open {
        bucket: String,
    },
    Get {
        bucket: String,
        key: String,
    },
    Set {
        bucket: String,
        key: String,
        value: Vec<u8>,
    },
    Delete {
        bucket: String,
        key: String,
    },
    Exists {
        bucket: String,
        key: String,
    },
    ListKeys {
        bucket: String,
        cursor: Option<u64>,
    },
    Increment {
        bucket: String,
        key: String,
        delta: u64,
    },
    GetMany {
        bucket: String,
        keys: Vec<String>,
    },
    SetMany {
        bucket: String,
        entries: Vec<(String, Vec<u8>)>,
    },
    DeleteMany {
        bucket: String,
        keys: Vec<String>,
    },
}

impl KvRequest {
    /// The bucket the request is about.
    pub fn bucket(&self) -> &str {
        match self {
            Self::Open { bucket }
            | Self::Get { bucket, .. }
            | Self::Set { bucket, .. }
            | Self::Delete { bucket, .. }
            | Self::Exists { bucket, .. }
            | Self::ListKeys { bucket, .. }
            | Self::Increment { bucket, .. }
            | Self::GetMany { bucket, .. }
            | Self::SetMany { bucket, .. }
            | Self::DeleteMany { bucket, .. } => bucket,
        }
    }
}

/// A successful key-value answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvReply {
    Done,
    Value(Option<Vec<u8>>),
    Exists(bool),
    Keys { keys: Vec<String>, cursor: Option<u64> },
    Number(u64),
    Values(Vec<Option<(String, Vec<u8>)>>),
}

/// Why a key-value operation failed. The guest sees `no-such-store`,
/// `access-denied`, or `other(message)` (the message names the limit).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum KvError {
    #[error("no such store")]
    NoSuchStore,
    #[error("access denied")]
    AccessDenied,
    #[error("{0}")]
    Other(String),
}

/// A request or reply that would not fit a worker message.
pub fn fits<T: Serialize>(message: &T) -> bool {
    postcard::experimental::serialized_size(message).is_ok_and(|n| n <= MAX_HOST_PAYLOAD)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::keyvalue::limits::{MAX_BUCKET, MAX_KEY, MAX_VALUE};
    use crate::protocol::worker::{FromWorker, ToWorker, decode, encode};

    #[test]
    fn the_largest_single_set_and_get_fit_one_worker_message() {
        let set = FromWorker::HostCall {
            instance: u64::MAX,
            call: u32::MAX,
            request: HostRequest::KeyValue(KvRequest::Set {
                bucket: "b".repeat(MAX_BUCKET),
                key: "k".repeat(MAX_KEY),
                value: vec![0xff; MAX_VALUE],
            }),
        };
        assert!(fits(&set));
        let bytes = encode(&set).unwrap();
        assert_eq!(decode::<FromWorker>(&bytes).unwrap(), set);
        let get = ToWorker::HostReply {
            call: u32::MAX,
            reply: HostReply::KeyValue(Ok(KvReply::Value(Some(vec![0xff; MAX_VALUE])))),
        };
        let bytes = encode(&get).unwrap();
        assert_eq!(decode::<ToWorker>(&bytes).unwrap(), get);
    }

    #[test]
    fn an_oversize_payload_does_not_fit() {
        let reply = HostReply::KeyValue(Ok(KvReply::Value(Some(vec![1; MAX_HOST_PAYLOAD]))));
        assert!(!fits(&reply));
    }
}
