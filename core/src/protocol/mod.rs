//! The management protocol: one set of postcard messages for the local
//! socket, MQTT and worker IPC. See docs/protocol.md.

pub mod audit;
pub mod fleet;
pub mod frame;
pub mod handshake;
pub mod host_call;
pub mod kv;
pub mod messages;
pub mod messaging;
pub mod telemetry;
pub mod template;
pub mod worker;

pub use kv::{KvAnswer, KvOp};
pub use messages::*;

/// Milliseconds since the Unix epoch, the time of log lines and audit
/// records (0 if the clock is before 1970).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The protocol version this build speaks; peers must match exactly.
pub const PROTOCOL_VERSION: u16 = 7;
