//! Messages of the device's bus (`wasi:messaging`, docs/messaging.md) as
//! they cross the worker link: a guest in a worker publishes with
//! [`MsgRequest`] (a host call), and the daemon hands a worker's handler
//! each message it receives in [`super::worker::ToWorker::Deliver`].
//!
//! Every message fits one worker message: the limits below hold for every
//! publisher (in-process, in a worker, or the MQTT bridge), so a module
//! behaves the same wherever it runs.

use serde::{Deserialize, Serialize};

/// The most bytes of a message's data.
pub const MAX_DATA: usize = 8 * 1024;
/// The most bytes of a topic (MQTT allows 65535; a device needs far less).
pub const MAX_TOPIC: usize = 256;
/// The most bytes of a content type.
pub const MAX_CONTENT_TYPE: usize = 128;
/// The most metadata pairs, and bytes of metadata keys and values together.
pub const MAX_METADATA_PAIRS: usize = 16;
pub const MAX_METADATA_BYTES: usize = 2 * 1024;

/// One message on the bus.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BusMessage {
    pub topic: String,
    pub data: Vec<u8>,
    pub content_type: Option<String>,
    pub metadata: Vec<(String, String)>,
}

impl BusMessage {
    /// Which limit the message breaks, in words; `None`: it fits.
    pub fn too_large(&self) -> Option<String> {
        if self.data.len() > MAX_DATA {
            return Some(format!(
                "the message's data is {} bytes; at most {MAX_DATA} travel on the bus",
                self.data.len()
            ));
        }
        if self.content_type.as_ref().is_some_and(|c| c.len() > MAX_CONTENT_TYPE) {
            return Some(format!("the content type is longer than {MAX_CONTENT_TYPE} bytes"));
        }
        let bytes: usize = self.metadata.iter().map(|(k, v)| k.len() + v.len()).sum();
        if self.metadata.len() > MAX_METADATA_PAIRS || bytes > MAX_METADATA_BYTES {
            return Some(format!(
                "the metadata has {} pairs and {bytes} bytes; at most {MAX_METADATA_PAIRS} pairs and \
                 {MAX_METADATA_BYTES} bytes travel",
                self.metadata.len()
            ));
        }
        None
    }
}

/// A guest's messaging call forwarded from a worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MsgRequest {
    /// `producer.send`: publish on `message.topic`.
    Publish(BusMessage),
}

/// Why a messaging call failed; the guest sees `permission-denied` or
/// `other` with these words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum MsgError {
    #[error("{0}")]
    PermissionDenied(String),
    #[error("{0}")]
    Other(String),
}

/// A module's messaging counters, as `status` shows them (since the
/// daemon started; they survive the module's restarts).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessagingStats {
    /// Messages it published.
    pub published: u64,
    /// Publishes refused (a topic outside its grant, a wildcard, too large).
    pub denied: u64,
    /// Messages put in its queue (topics it subscribes to).
    pub received: u64,
    /// Messages its handler finished (returned `ok` or an error).
    pub handled: u64,
    /// Handler calls that returned an error or trapped.
    pub failed: u64,
    /// Messages dropped from a full queue (the oldest go first).
    pub dropped: u64,
    /// Messages waiting in its queue now.
    pub queued: u64,
    /// The queue's size.
    pub capacity: u64,
}
