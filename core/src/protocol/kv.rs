//! The operator's access to a module's key-value state (`arcella kv`):
//! [`Request::Kv`](super::Request::Kv) carries a [`KvOp`] on one bucket,
//! answered by [`Response::Kv`](super::Response::Kv). Lists and exports
//! come in pages (each within one frame); the client asks for the next
//! page after the last key it got.

use serde::{Deserialize, Serialize};

/// The most bytes of keys and values one page carries (well within a
/// 256 KiB frame).
pub const KV_PAGE_BYTES: usize = 128 * 1024;

/// One operation on a bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvOp {
    /// Keys after `after` (all from the first if `None`), one page.
    List {
        after: Option<String>,
    },
    Get {
        key: String,
    },
    Set {
        key: String,
        value: Vec<u8>,
    },
    Delete {
        key: String,
    },
    /// Entries after `after`, one page.
    Export {
        after: Option<String>,
    },
    /// Sets every entry in one transaction: all or nothing, within quota.
    Import {
        entries: Vec<(String, Vec<u8>)>,
    },
}

impl KvOp {
    /// Whether the operation changes state (the `change` class) or only
    /// reads it (`read`).
    pub fn writes(&self) -> bool {
        matches!(self, Self::Set { .. } | Self::Delete { .. } | Self::Import { .. })
    }
}

/// The answer to a [`KvOp`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvAnswer {
    /// A page of keys; `more` when another page follows.
    Keys {
        keys: Vec<String>,
        more: bool,
    },
    Value(Option<Vec<u8>>),
    /// A page of entries; `more` when another page follows.
    Entries {
        entries: Vec<(String, Vec<u8>)>,
        more: bool,
    },
    /// Set, deleted or imported (how many entries).
    Done {
        count: u32,
    },
}
