//! MQTT payloads: one frame each, exactly as on the socket (a 4-byte
//! length, then the postcard message), so a payload cut short by a broker
//! or a tool is told apart from a whole one.

use arcella_core::protocol::frame::{self, FrameError, LEN_PREFIX};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub fn encode<T: Serialize>(message: &T) -> Result<Vec<u8>, FrameError> {
    frame::encode(message)
}

/// Decodes one whole frame.
pub fn decode<T: DeserializeOwned>(payload: &[u8]) -> Result<T, FrameError> {
    let (prefix, body) = payload.split_at_checked(LEN_PREFIX).ok_or_else(|| {
        FrameError::Malformed(format!(
            "a {}-byte payload is shorter than a frame header",
            payload.len()
        ))
    })?;
    let announced = u32::from_le_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
    if announced != body.len() {
        return Err(FrameError::Malformed(format!(
            "the frame announces {announced} bytes but carries {}",
            body.len()
        )));
    }
    frame::decode(body)
}

/// The body of a frame (without its length prefix), for request-id peeking.
pub fn body(payload: &[u8]) -> Option<&[u8]> {
    payload.get(LEN_PREFIX..)
}
