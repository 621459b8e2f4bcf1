//! The artifact file format (`.cwasm` as Arcella writes it).
//!
//! ```text
//! offset  size         field
//! 0       8            magic "ARCELLA\0"
//! 8       2            format version, u16 little-endian (2)
//! 10      4            header length H, u32 little-endian (at most 16 KiB)
//! 14      H            header, postcard-encoded ArtifactHeader
//! 14+H    code_len     code: wasmtime's precompiled bytes (an ELF image)
//! end-32  32           sha256 of the first 14+H bytes (preamble and header)
//! ```
//!
//! Every byte is hashed once: the trailing digest seals the preamble and
//! the header, and the header's `code_sha256` (the artifact's name in the
//! store) seals the code. A changed byte anywhere is caught, and both are
//! checked before anything is handed to wasmtime's `unsafe` deserialize.
//! Version 1, which earlier releases wrote, sealed every byte before the
//! trailer with it, so its code was hashed twice; it is still read.

use super::kind::{ArtifactKind, InputKind};
use crate::digest::{self, Sha256Digest, sha256};
use crate::fingerprint::EngineFingerprint;
use serde::{Deserialize, Serialize};

/// First bytes of every Arcella artifact.
pub const MAGIC: [u8; 8] = *b"ARCELLA\0";
/// The format version this build writes.
pub const FORMAT_VERSION: u16 = 2;
/// The oldest version this build reads: version 1's trailer covers the
/// code too, which is checked as written.
pub const OLDEST_FORMAT_VERSION: u16 = 1;
/// Upper bound on the header, so a corrupt length cannot ask for gigabytes.
pub const MAX_HEADER_LEN: usize = 16 * 1024;
/// Magic, format version and header length: what an artifact file starts with.
pub const PREAMBLE_LEN: usize = MAGIC.len() + 2 + 4;
const DIGEST_LEN: usize = 32;

/// What an artifact says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactHeader {
    pub kind: ArtifactKind,
    pub fingerprint: EngineFingerprint,
    /// sha256 of the `.wasm` it was compiled from.
    pub source_sha256: Sha256Digest,
    /// File name of that source, for the "recompile with" hint.
    pub source_name: String,
    /// sha256 of the code section: the artifact's identity in the store.
    pub code_sha256: Sha256Digest,
    pub code_len: u64,
}

/// A decoded, verified artifact borrowing its code from the input bytes.
#[derive(Debug)]
pub struct ArtifactRef<'a> {
    pub header: ArtifactHeader,
    pub code: &'a [u8],
}

/// Why bytes are not a valid artifact.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FormatError {
    #[error("the file is empty")]
    Empty,
    #[error("not an Arcella artifact: the file is {}", .0.describe())]
    NotAnArtifact(InputKind),
    #[error(
        "artifact format version {found}, this arcella reads versions {OLDEST_FORMAT_VERSION} to {FORMAT_VERSION}: \
         recompile it with this arcella"
    )]
    UnsupportedVersion { found: u16 },
    #[error("truncated: the artifact needs {expected} bytes, the file has {actual}")]
    Truncated { expected: u64, actual: u64 },
    #[error("{extra} unexpected bytes after the end of the artifact")]
    TrailingBytes { extra: u64 },
    #[error("header length {0} exceeds the {MAX_HEADER_LEN}-byte limit: the file is corrupt")]
    HeaderTooLarge(u32),
    #[error("the header is malformed ({0}): the file is corrupt")]
    HeaderMalformed(String),
    #[error("the artifact's digest does not match its contents: the file was changed or damaged after it was written")]
    DigestMismatch,
    #[error(
        "the code digest recorded in the header ({recorded}) does not match the code ({actual}): the file was \
         changed or damaged after it was written"
    )]
    CodeDigestMismatch { recorded: String, actual: String },
}

impl ArtifactHeader {
    /// A header for `code` compiled from `source`.
    pub fn describe(
        kind: ArtifactKind,
        fingerprint: EngineFingerprint,
        source: &[u8],
        source_name: &str,
        code: &[u8],
    ) -> Self {
        Self {
            kind,
            fingerprint,
            source_sha256: sha256(source),
            source_name: source_name.to_owned(),
            code_sha256: sha256(code),
            code_len: code.len() as u64,
        }
    }

    /// The code digest in hex: the artifact's name in the store.
    pub fn id(&self) -> String {
        digest::hex(&self.code_sha256)
    }
}

/// Writes `header` and `code` as one artifact file image.
///
/// The header is written as given: a header whose `code_sha256` disagrees
/// with `code` produces an artifact that [`decode`] refuses.
pub fn encode(header: &ArtifactHeader, code: &[u8]) -> Vec<u8> {
    let header_bytes = encode_header(header);
    let mut out = Vec::with_capacity(PREAMBLE_LEN + header_bytes.len() + code.len() + DIGEST_LEN);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    // The header is far below 4 GiB: bounded by MAX_HEADER_LEN in practice.
    out.extend_from_slice(&(header_bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(&header_bytes);
    let digest = sha256(&out);
    out.extend_from_slice(code);
    out.extend_from_slice(&digest);
    out
}

/// Where the code of the artifact whose file starts with `preamble` (its
/// first [`PREAMBLE_LEN`] bytes) begins, if they are an artifact's
/// preamble: a reader can place the code before [`decode`] checks it all.
pub fn code_offset(preamble: &[u8]) -> Option<usize> {
    let header_len = header_len(preamble)? as usize;
    (preamble.starts_with(&MAGIC) && header_len <= MAX_HEADER_LEN).then_some(PREAMBLE_LEN + header_len)
}

/// The header length a preamble records (`None` if `bytes` is shorter).
fn header_len(bytes: &[u8]) -> Option<u32> {
    let field = bytes.get(PREAMBLE_LEN - 4..PREAMBLE_LEN)?;
    Some(u32::from_le_bytes([field[0], field[1], field[2], field[3]]))
}

/// Decodes and verifies an artifact file image.
pub fn decode(bytes: &[u8]) -> Result<ArtifactRef<'_>, FormatError> {
    if bytes.is_empty() {
        return Err(FormatError::Empty);
    }
    if !bytes.starts_with(&MAGIC) {
        return Err(FormatError::NotAnArtifact(InputKind::of(bytes)));
    }
    let actual = bytes.len() as u64;
    if bytes.len() < PREAMBLE_LEN {
        return Err(FormatError::Truncated {
            expected: PREAMBLE_LEN as u64,
            actual,
        });
    }
    let version = u16::from_le_bytes([bytes[8], bytes[9]]);
    if !(OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(&version) {
        return Err(FormatError::UnsupportedVersion { found: version });
    }
    let header_len = header_len(bytes).unwrap_or_default();
    if header_len as usize > MAX_HEADER_LEN {
        return Err(FormatError::HeaderTooLarge(header_len));
    }
    let header_end = PREAMBLE_LEN + header_len as usize;
    if bytes.len() < header_end + DIGEST_LEN {
        return Err(FormatError::Truncated {
            expected: (header_end + DIGEST_LEN) as u64,
            actual,
        });
    }
    let header = decode_header(&bytes[PREAMBLE_LEN..header_end])?;
    let expected = (header_end as u64)
        .checked_add(header.code_len)
        .and_then(|n| n.checked_add(DIGEST_LEN as u64))
        .ok_or_else(|| FormatError::HeaderMalformed("code length overflows".into()))?;
    if actual < expected {
        return Err(FormatError::Truncated { expected, actual });
    }
    if actual > expected {
        return Err(FormatError::TrailingBytes {
            extra: actual - expected,
        });
    }
    let (body, trailer) = bytes.split_at(bytes.len() - DIGEST_LEN);
    let sealed = match version {
        1 => body,
        _ => &body[..header_end],
    };
    if sha256(sealed) != trailer {
        return Err(FormatError::DigestMismatch);
    }
    let code = &body[header_end..];
    let actual_code = sha256(code);
    if actual_code != header.code_sha256 {
        return Err(FormatError::CodeDigestMismatch {
            recorded: digest::hex(&header.code_sha256),
            actual: digest::hex(&actual_code),
        });
    }
    Ok(ArtifactRef { header, code })
}

/// The header on its own, sealed with a trailing sha256 (the store's
/// `.meta` files).
pub fn encode_sealed_header(header: &ArtifactHeader) -> Vec<u8> {
    let mut out = encode_header(header);
    let digest = sha256(&out);
    out.extend_from_slice(&digest);
    out
}

/// Reads what [`encode_sealed_header`] wrote.
pub fn decode_sealed_header(bytes: &[u8]) -> Result<ArtifactHeader, FormatError> {
    if bytes.is_empty() {
        return Err(FormatError::Empty);
    }
    if bytes.len() < DIGEST_LEN + 1 {
        return Err(FormatError::Truncated {
            expected: DIGEST_LEN as u64 + 1,
            actual: bytes.len() as u64,
        });
    }
    let (body, trailer) = bytes.split_at(bytes.len() - DIGEST_LEN);
    if sha256(body) != trailer {
        return Err(FormatError::DigestMismatch);
    }
    decode_header(body)
}

fn encode_header(header: &ArtifactHeader) -> Vec<u8> {
    // Serialising plain owned data into a Vec cannot fail.
    postcard::to_stdvec(header).unwrap_or_default()
}

fn decode_header(bytes: &[u8]) -> Result<ArtifactHeader, FormatError> {
    match postcard::take_from_bytes::<ArtifactHeader>(bytes) {
        Ok((header, [])) => Ok(header),
        Ok((_, rest)) => Err(FormatError::HeaderMalformed(format!(
            "{} stray bytes after the header",
            rest.len()
        ))),
        Err(e) => Err(FormatError::HeaderMalformed(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::EngineProfile;
    use proptest::prelude::*;

    fn sample(code: &[u8]) -> (ArtifactHeader, Vec<u8>) {
        let fp = EngineFingerprint::of(&EngineProfile::default());
        let header = ArtifactHeader::describe(ArtifactKind::Module, fp, b"\0asm", "hello.wasm", code);
        let bytes = encode(&header, code);
        (header, bytes)
    }

    #[test]
    fn round_trips() {
        let (header, bytes) = sample(b"some code");
        let decoded = decode(&bytes).unwrap();
        assert_eq!(decoded.header, header);
        assert_eq!(decoded.code, b"some code");
    }

    #[test]
    fn every_flipped_byte_is_caught() {
        let (_, bytes) = sample(&[0x5a; 300]);
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x01;
            assert!(decode(&bad).is_err(), "flip at byte {i} went unnoticed");
        }
    }

    #[test]
    fn every_truncation_is_caught() {
        let (_, bytes) = sample(&[1; 100]);
        for len in 0..bytes.len() {
            assert!(decode(&bytes[..len]).is_err(), "truncation to {len} went unnoticed");
        }
        let err = decode(&bytes[..bytes.len() - 10]).unwrap_err();
        assert!(matches!(err, FormatError::Truncated { .. }), "{err}");
    }

    /// What earlier releases wrote: the same layout, version 1, the
    /// trailer over every byte before it.
    fn encode_v1(header: &ArtifactHeader, code: &[u8]) -> Vec<u8> {
        let mut out = encode(header, code);
        out[8..10].copy_from_slice(&1u16.to_le_bytes());
        let body = out.len() - DIGEST_LEN;
        let digest = sha256(&out[..body]);
        out[body..].copy_from_slice(&digest);
        out
    }

    #[test]
    fn the_trailer_seals_the_header_and_the_code_digest_the_code() {
        let (header, bytes) = sample(&[7; 200]);
        let header_end = bytes.len() - DIGEST_LEN - 200;
        assert_eq!(&bytes[bytes.len() - DIGEST_LEN..], &sha256(&bytes[..header_end])[..]);
        // A changed code byte is named as the code's, a changed header
        // byte as the file's.
        let mut bad = bytes.clone();
        bad[header_end + 100] ^= 1;
        assert!(matches!(decode(&bad), Err(FormatError::CodeDigestMismatch { .. })));
        let mut bad = bytes.clone();
        bad[header_end - 1] ^= 1;
        assert!(decode(&bad).is_err());
        assert_eq!(decode(&bytes).unwrap().header, header);
    }

    #[test]
    fn version_1_is_still_read_and_its_damage_caught() {
        let code = [3u8; 120];
        let (header, _) = sample(&code);
        let old = encode_v1(&header, &code);
        let decoded = decode(&old).unwrap();
        assert_eq!((decoded.header, decoded.code), (header, &code[..]));
        for i in 0..old.len() {
            let mut bad = old.clone();
            bad[i] ^= 0x10;
            assert!(
                decode(&bad).is_err(),
                "flip at byte {i} of a version 1 file went unnoticed"
            );
        }
    }

    #[test]
    fn a_recorded_code_digest_that_lies_is_caught() {
        let (mut header, _) = sample(b"code");
        header.code_sha256[0] ^= 0xff;
        let bytes = encode(&header, b"code");
        assert!(matches!(decode(&bytes), Err(FormatError::CodeDigestMismatch { .. })));
    }

    #[test]
    fn other_versions_and_inputs_are_named() {
        let (_, mut bytes) = sample(b"x");
        bytes[8] = 9;
        assert_eq!(
            decode(&bytes).unwrap_err(),
            FormatError::UnsupportedVersion { found: 9 }
        );
        bytes[8] = 0;
        assert_eq!(
            decode(&bytes).unwrap_err(),
            FormatError::UnsupportedVersion { found: 0 }
        );
        assert_eq!(
            decode(b"\0asm\x01\0\0\0").unwrap_err(),
            FormatError::NotAnArtifact(InputKind::Wasm(ArtifactKind::Module))
        );
        assert_eq!(decode(b"").unwrap_err(), FormatError::Empty);
    }

    #[test]
    fn sealed_header_round_trips_and_catches_damage() {
        let (header, _) = sample(b"code");
        let sealed = encode_sealed_header(&header);
        assert_eq!(decode_sealed_header(&sealed).unwrap(), header);
        let mut bad = sealed.clone();
        bad[3] ^= 4;
        assert_eq!(decode_sealed_header(&bad).unwrap_err(), FormatError::DigestMismatch);
    }

    proptest! {
        #[test]
        fn decode_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode(&bytes);
            let _ = decode_sealed_header(&bytes);
        }

        #[test]
        fn decode_never_panics_behind_a_valid_preamble(
            header_len in 0u32..64,
            rest in proptest::collection::vec(any::<u8>(), 0..256),
        ) {
            let mut bytes = MAGIC.to_vec();
            bytes.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
            bytes.extend_from_slice(&header_len.to_le_bytes());
            bytes.extend_from_slice(&rest);
            prop_assert!(decode(&bytes).is_err());
        }
    }
}
