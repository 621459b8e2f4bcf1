//! The management protocol: one set of postcard messages for the local
//! socket, MQTT and worker IPC. See docs/protocol.md.

pub mod audit;
pub mod fleet;
pub mod frame;
pub mod handshake;
pub mod host_call;
pub mod kv;
pub mod messages;
pub mod worker;

pub use kv::{KvAnswer, KvOp};
pub use messages::*;

/// The protocol version this build speaks; peers must match exactly.
pub const PROTOCOL_VERSION: u16 = 3;
