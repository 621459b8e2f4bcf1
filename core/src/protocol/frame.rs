//! Length-prefixed framing, with no I/O: a frame is a `u32` little-endian
//! payload length followed by that many bytes of postcard payload. The same
//! frames travel over the Unix socket, MQTT and worker IPC
//! (docs/protocol.md, "Framing").

use std::collections::VecDeque;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::messages::RequestId;

/// Bytes in the length prefix that starts every frame.
pub const LEN_PREFIX: usize = 4;

/// Most payload bytes in one frame; fits an MQTT broker with a 256 KiB limit.
pub const MAX_FRAME_LEN: usize = 256 * 1024;

/// The size files are cut into for [`Request::Upload`]: chunk `i` starts at
/// `i * UPLOAD_CHUNK_LEN` and holds this many bytes (the last one fewer). A
/// full Upload frame fits [`MAX_FRAME_LEN`] with room to spare.
///
/// [`Request::Upload`]: super::Request::Upload
pub const UPLOAD_CHUNK_LEN: usize = 64 * 1024;

// Frames must be describable by the u32 prefix, and an Upload chunk plus its
// fields (at most ~70 bytes besides the data) must fit one frame.
const _: () = assert!(MAX_FRAME_LEN <= u32::MAX as usize);
const _: () = assert!(UPLOAD_CHUNK_LEN + 128 <= MAX_FRAME_LEN);

/// Why a frame could not be encoded, read or decoded.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    /// The payload is longer than the limit. From a [`FrameReader`] this is
    /// fatal: framing is lost and the connection must be closed.
    #[error("frame of {len} bytes exceeds the {max}-byte limit")]
    TooLarge { len: usize, max: usize },
    /// postcard could not decode the payload as the expected message (or,
    /// from [`encode`], could not encode it); the text names the type.
    #[error("{0}")]
    Malformed(String),
    /// The payload decoded, but bytes remained after the message.
    #[error("payload decoded but {extra} trailing bytes remain")]
    TrailingBytes { extra: usize },
}

/// Encodes `msg` as a whole frame: length prefix, then postcard payload.
///
/// Fails with [`FrameError::TooLarge`] if the payload exceeds
/// [`MAX_FRAME_LEN`].
pub fn encode<T: Serialize>(msg: &T) -> Result<Vec<u8>, FrameError> {
    let mut frame = postcard::to_extend(msg, vec![0u8; LEN_PREFIX])
        .map_err(|e| FrameError::Malformed(format!("cannot encode a {}: {e}", short_type_name::<T>())))?;
    let len = frame.len() - LEN_PREFIX;
    let too_large = FrameError::TooLarge {
        len,
        max: MAX_FRAME_LEN,
    };
    if len > MAX_FRAME_LEN {
        return Err(too_large);
    }
    let prefix = u32::try_from(len).map_err(|_| too_large)?;
    frame[..LEN_PREFIX].copy_from_slice(&prefix.to_le_bytes());
    Ok(frame)
}

/// Decodes one payload (without its prefix) as a `T`; the whole payload must
/// be consumed. Never panics, whatever the bytes.
pub fn decode<T: DeserializeOwned>(payload: &[u8]) -> Result<T, FrameError> {
    let (msg, rest) = postcard::take_from_bytes::<T>(payload)
        .map_err(|e| FrameError::Malformed(format!("payload is not a valid {}: {e}", short_type_name::<T>())))?;
    if !rest.is_empty() {
        return Err(FrameError::TrailingBytes { extra: rest.len() });
    }
    Ok(msg)
}

/// The request id at the start of a `ClientMessage` payload, readable even
/// when the rest is not (a request variant this build does not know): lets
/// the daemon answer that request with `Err(BadRequest)` instead of giving
/// up on the connection (docs/protocol.md, "Errors").
pub fn peek_request_id(payload: &[u8]) -> Option<RequestId> {
    postcard::take_from_bytes::<RequestId>(payload).ok().map(|(id, _)| id)
}

/// `T`'s name without module paths: `Result<Response, RemoteError>`.
fn short_type_name<T: ?Sized>() -> String {
    let full = std::any::type_name::<T>();
    let mut out = String::with_capacity(full.len());
    let mut segment_start = 0;
    let mut chars = full.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ':' && chars.peek() == Some(&':') {
            chars.next();
            out.truncate(segment_start);
        } else {
            out.push(c);
            if !(c.is_alphanumeric() || c == '_') {
                segment_start = out.len();
            }
        }
    }
    out
}

/// Accumulates bytes from any transport and yields complete payloads.
///
/// Bounded: the frame being assembled never holds more than
/// `LEN_PREFIX + max` bytes, and a length prefix announcing more than `max`
/// is refused before any of its body is stored. Complete frames wait in a
/// queue until [`next_frame`](Self::next_frame) takes them, so a caller reads
/// into a fixed buffer, pushes, then drains:
///
/// ```
/// # use arcella_core::protocol::frame::{FrameReader, MAX_FRAME_LEN};
/// # fn read(_: &mut [u8]) -> usize { 0 }
/// let mut reader = FrameReader::new(MAX_FRAME_LEN);
/// let mut buf = [0u8; 8192];
/// loop {
///     let n = read(&mut buf);
///     if n == 0 {
///         assert_eq!(reader.buffered(), 0, "peer sent a truncated frame");
///         break;
///     }
///     reader.push(&buf[..n])?;
///     while let Some(payload) = reader.next_frame() {
///         // decode::<ClientMessage>(&payload) …
/// #       drop(payload);
///     }
/// }
/// # Ok::<(), arcella_core::protocol::frame::FrameError>(())
/// ```
///
/// Every byte is copied once, from the pushed slice into its payload's
/// `Vec`, which `next_frame` hands over without copying.
#[derive(Debug)]
pub struct FrameReader {
    max: usize,
    /// Prefix bytes of the next frame, while fewer than `LEN_PREFIX` arrived.
    prefix: [u8; LEN_PREFIX],
    prefix_len: usize,
    /// Announced length of the frame whose payload is being assembled.
    want: Option<usize>,
    payload: Vec<u8>,
    /// Complete payloads not yet taken, and their bytes including prefixes.
    ready: VecDeque<Vec<u8>>,
    ready_bytes: usize,
    /// Set once a prefix announced too much: the announced length.
    failed: Option<usize>,
}

impl FrameReader {
    /// A reader accepting payloads of at most `max` bytes.
    pub fn new(max: usize) -> Self {
        Self {
            max,
            prefix: [0; LEN_PREFIX],
            prefix_len: 0,
            want: None,
            payload: Vec::new(),
            ready: VecDeque::new(),
            ready_bytes: 0,
            failed: None,
        }
    }

    /// The largest payload this reader accepts.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Appends bytes; returns `Err(TooLarge)` as soon as a length prefix
    /// announces more than `max` (the connection cannot recover: framing is
    /// lost). After that every push fails the same way and the partial frame
    /// is dropped; frames completed before the bad prefix can still be taken.
    pub fn push(&mut self, mut bytes: &[u8]) -> Result<(), FrameError> {
        if let Some(len) = self.failed {
            return Err(FrameError::TooLarge { len, max: self.max });
        }
        while !bytes.is_empty() {
            let Some(want) = self.want else {
                let n = (LEN_PREFIX - self.prefix_len).min(bytes.len());
                let (head, rest) = bytes.split_at(n);
                self.prefix[self.prefix_len..self.prefix_len + n].copy_from_slice(head);
                self.prefix_len += n;
                bytes = rest;
                if self.prefix_len == LEN_PREFIX {
                    self.start_payload()?;
                }
                continue;
            };
            let n = (want - self.payload.len()).min(bytes.len());
            let (head, rest) = bytes.split_at(n);
            // Grow geometrically, but never past the announced length.
            let needed = self.payload.len() + n;
            if needed > self.payload.capacity() {
                let target = needed.max(self.payload.capacity() * 2).min(want);
                self.payload.reserve_exact(target - self.payload.len());
            }
            self.payload.extend_from_slice(head);
            bytes = rest;
            if self.payload.len() == want {
                self.want = None;
                let payload = std::mem::take(&mut self.payload);
                self.finish(payload);
            }
        }
        Ok(())
    }

    /// A complete prefix arrived: check it and start its payload.
    fn start_payload(&mut self) -> Result<(), FrameError> {
        self.prefix_len = 0;
        let announced = u32::from_le_bytes(self.prefix);
        let len = usize::try_from(announced).unwrap_or(usize::MAX);
        if len > self.max {
            self.failed = Some(len);
            return Err(FrameError::TooLarge { len, max: self.max });
        }
        if len == 0 {
            self.finish(Vec::new());
        } else {
            self.want = Some(len);
        }
        Ok(())
    }

    fn finish(&mut self, payload: Vec<u8>) {
        self.ready_bytes += LEN_PREFIX + payload.len();
        self.ready.push_back(payload);
    }

    /// The next complete payload, if one is buffered.
    pub fn next_frame(&mut self) -> Option<Vec<u8>> {
        let payload = self.ready.pop_front()?;
        self.ready_bytes -= LEN_PREFIX + payload.len();
        Some(payload)
    }

    /// Bytes buffered but not yet returned, prefixes included (a partial
    /// frame at EOF means the peer sent a truncated frame).
    pub fn buffered(&self) -> usize {
        self.ready_bytes + self.partial_len()
    }

    /// Bytes of the frame being assembled; always below `LEN_PREFIX + max`.
    fn partial_len(&self) -> usize {
        match self.want {
            Some(_) => LEN_PREFIX + self.payload.len(),
            None => self.prefix_len,
        }
    }
}

impl Default for FrameReader {
    /// A reader with the protocol's limit, [`MAX_FRAME_LEN`].
    fn default() -> Self {
        Self::new(MAX_FRAME_LEN)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::protocol::*;

    #[test]
    fn a_full_upload_chunk_fits_one_frame() {
        let id = RequestId::MAX;
        let chunk = crate::protocol::Upload {
            sha256: [0xff; 32],
            total_len: u64::MAX,
            offset: u64::MAX,
            data: vec![0xff; UPLOAD_CHUNK_LEN],
        };
        let frame = encode(&ClientMessage {
            id,
            request: Request::Upload(chunk),
        })
        .unwrap();
        assert!(frame.len() - LEN_PREFIX <= MAX_FRAME_LEN, "{} bytes", frame.len());
    }

    #[test]
    fn encode_enforces_the_limit() {
        // A Vec<u8> of n bytes is a 3-byte varint length plus n bytes here.
        assert_eq!(
            encode(&vec![0u8; MAX_FRAME_LEN - 3]).unwrap().len(),
            LEN_PREFIX + MAX_FRAME_LEN
        );
        let err = encode(&vec![0u8; MAX_FRAME_LEN - 2]).unwrap_err();
        assert_eq!(
            err,
            FrameError::TooLarge {
                len: MAX_FRAME_LEN + 1,
                max: MAX_FRAME_LEN
            }
        );
        assert_eq!(err.to_string(), "frame of 262145 bytes exceeds the 262144-byte limit");
    }

    #[test]
    fn decode_reports_malformed_and_trailing_payloads() {
        let err = decode::<ClientMessage>(&[1, 99]).unwrap_err();
        assert!(
            matches!(&err, FrameError::Malformed(m) if m.starts_with("payload is not a valid ClientMessage: ")),
            "{err}"
        );
        assert!(
            decode::<Request>(&[])
                .unwrap_err()
                .to_string()
                .contains("valid Request")
        );
        assert_eq!(
            decode::<Request>(&[0, 0, 0]),
            Err(FrameError::TrailingBytes { extra: 2 })
        );
        assert_eq!(
            short_type_name::<Result<Response, RemoteError>>(),
            "Result<Response, RemoteError>"
        );
    }

    #[test]
    fn the_request_id_survives_an_unknown_request() {
        // id 300, then Request discriminant 99, which no build knows yet.
        let payload = [0xac, 0x02, 99, 1, 2];
        assert!(matches!(
            decode::<ClientMessage>(&payload),
            Err(FrameError::Malformed(_))
        ));
        assert_eq!(peek_request_id(&payload), Some(300));
        assert_eq!(peek_request_id(&[0x80]), None);
    }

    /// Three frames: a message, an empty payload and another message.
    fn stream() -> (Vec<u8>, Vec<Vec<u8>>) {
        let msgs = [
            encode(&ClientMessage {
                id: 7,
                request: Request::Logs {
                    module: "blinky".into(),
                    tail: 50,
                },
            })
            .unwrap(),
            encode(&()).unwrap(),
            encode(&Event::State {
                module: "blinky".into(),
                state: ModuleState::Running,
            })
            .unwrap(),
        ];
        (msgs.concat(), msgs.iter().map(|f| f[LEN_PREFIX..].to_vec()).collect())
    }

    fn read_all(reader: &mut FrameReader, chunks: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut frames = Vec::new();
        for chunk in chunks {
            reader.push(chunk).unwrap();
            assert!(reader.partial_len() <= LEN_PREFIX + reader.max());
            frames.extend(std::iter::from_fn(|| reader.next_frame()));
        }
        frames
    }

    #[test]
    fn frames_split_anywhere_reassemble() {
        let (bytes, expected) = stream();
        assert_eq!(read_all(&mut FrameReader::default(), &[&bytes]), expected, "one push");
        for i in 0..=bytes.len() {
            for j in i..=bytes.len() {
                let mut reader = FrameReader::default();
                assert_eq!(
                    read_all(&mut reader, &[&bytes[..i], &bytes[i..j], &bytes[j..]]),
                    expected,
                    "cuts {i} {j}"
                );
                assert_eq!(reader.buffered(), 0);
            }
        }
        let bytewise: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(read_all(&mut FrameReader::default(), &bytewise), expected);
    }

    #[test]
    fn buffered_counts_queued_frames_and_a_truncated_tail() {
        let (bytes, expected) = stream();
        let mut reader = FrameReader::default();
        reader.push(&bytes).unwrap();
        assert_eq!(reader.buffered(), bytes.len());
        reader.push(&[5, 0, 0]).unwrap();
        assert_eq!(reader.buffered(), bytes.len() + 3);
        assert_eq!(std::iter::from_fn(|| reader.next_frame()).collect::<Vec<_>>(), expected);
        assert_eq!(reader.buffered(), 3);
        reader.push(&[0, 1, 2]).unwrap();
        assert_eq!((reader.next_frame(), reader.buffered()), (None, LEN_PREFIX + 2));
    }

    #[test]
    fn oversize_prefix_is_refused_before_its_body() {
        let mut reader = FrameReader::new(16);
        reader.push(&[16, 0, 0, 0]).unwrap();
        reader.push(&[9; 16]).unwrap();
        let mut bad = vec![17, 0, 0, 0];
        bad.extend([9; 17]);
        let too_large = FrameError::TooLarge { len: 17, max: 16 };
        assert_eq!(reader.push(&bad), Err(too_large.clone()));
        assert_eq!(reader.buffered(), LEN_PREFIX + 16, "only the good frame is kept");
        assert_eq!(reader.push(&[0; 4]), Err(too_large), "framing is lost for good");
        assert_eq!(reader.next_frame(), Some(vec![9; 16]));
        assert_eq!((reader.next_frame(), reader.buffered()), (None, 0));
        let mut reader = FrameReader::default();
        assert_eq!(
            reader.push(b"GET / HTTP/1.1\r\n"),
            Err(FrameError::TooLarge {
                len: 0x2054_4547,
                max: MAX_FRAME_LEN
            })
        );
    }

    fn small_bytes() -> impl Strategy<Value = Vec<u8>> {
        // Mostly small bytes, so prefixes often announce acceptable lengths.
        prop::collection::vec(prop_oneof![3 => 0u8..8, 1 => any::<u8>()], 0..600)
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode::<ClientMessage>(&bytes);
            let _ = decode::<ServerMessage>(&bytes);
            let _ = decode::<Hello>(&bytes);
            let _ = decode::<HelloReply>(&bytes);
        }

        #[test]
        fn any_chunking_yields_the_same_frames(
            payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..200), 0..6),
            cuts in prop::collection::vec(0usize..1200, 0..12),
        ) {
            let mut bytes = Vec::new();
            for p in &payloads {
                bytes.extend((p.len() as u32).to_le_bytes());
                bytes.extend(p);
            }
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(bytes.len())).collect();
            cuts.extend([0, bytes.len()]);
            cuts.sort_unstable();
            let chunks: Vec<&[u8]> = cuts.windows(2).map(|w| &bytes[w[0]..w[1]]).collect();
            let mut reader = FrameReader::new(200);
            prop_assert_eq!(read_all(&mut reader, &chunks), payloads);
            prop_assert_eq!(reader.buffered(), 0);
        }

        #[test]
        fn arbitrary_pushes_stay_bounded(bytes in small_bytes(), max in 0usize..64, step in 1usize..40) {
            let mut reader = FrameReader::new(max);
            for chunk in bytes.chunks(step) {
                let pushed = reader.push(chunk);
                prop_assert!(reader.partial_len() <= LEN_PREFIX + max);
                while let Some(frame) = reader.next_frame() {
                    prop_assert!(frame.len() <= max);
                }
                prop_assert!(reader.buffered() <= LEN_PREFIX + max);
                if pushed.is_err() {
                    prop_assert!(reader.push(chunk).is_err());
                }
            }
        }
    }
}
