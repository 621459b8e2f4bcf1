//! Files arriving in chunks (`Request::Upload`), streamed to disk under
//! `<data>/uploads/` and verified against their sha256 before anything
//! uses them. Chunks may arrive in any order and be repeated; an upload
//! interrupted by a disconnect resumes where it stopped.

use crate::digest::{self, Sha256Digest};
use crate::protocol::frame::UPLOAD_CHUNK_LEN;
use crate::protocol::{ErrorKind, RemoteError, Upload};
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

/// Largest file that can be uploaded.
pub const MAX_UPLOAD_LEN: u64 = 64 * 1024 * 1024;
/// Uploads in progress at once.
pub const MAX_PENDING: usize = 8;
/// Smallest and largest chunk a sender may choose.
pub const MIN_CHUNK_LEN: u64 = 1024;
pub const MAX_CHUNK_LEN: u64 = 240 * 1024;

/// One chunk of a file: bytes `index * chunk_len ..` of `total_len`.
#[derive(Debug, Clone, Copy)]
pub struct Piece<'a> {
    pub sha256: Sha256Digest,
    pub total_len: u64,
    pub chunk_len: u64,
    pub index: u64,
    pub data: &'a [u8],
}

struct Pending {
    file: File,
    total_len: u64,
    chunk_len: u64,
    have: Vec<bool>,
}

/// Uploads in progress and completed-but-unused.
#[derive(Debug)]
pub struct Uploads {
    dir: PathBuf,
    pending: Mutex<HashMap<Sha256Digest, Pending>>,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("total_len", &self.total_len)
            .finish_non_exhaustive()
    }
}

fn bad(message: impl Into<String>) -> RemoteError {
    RemoteError::new(ErrorKind::BadRequest, message)
}

fn internal(e: std::io::Error) -> RemoteError {
    RemoteError::new(ErrorKind::Internal, format!("upload staging: {e}"))
}

impl Uploads {
    /// Opens the staging directory, discarding what a previous run left.
    pub fn open(data_dir: &Path) -> std::io::Result<Self> {
        let dir = data_dir.join("uploads");
        if dir.exists() {
            fs::remove_dir_all(&dir)?;
        }
        fs::create_dir_all(&dir)?;
        Ok(Self {
            dir,
            pending: Mutex::new(HashMap::new()),
        })
    }

    fn done_path(&self, sha256: &Sha256Digest) -> PathBuf {
        self.dir.join(format!("{}.done", digest::hex(sha256)))
    }

    /// Takes one chunk of the socket protocol ([`UPLOAD_CHUNK_LEN`]-byte
    /// chunks); returns (bytes received, complete).
    pub fn accept(&self, chunk: &Upload) -> Result<(u64, bool), RemoteError> {
        let chunk_len = UPLOAD_CHUNK_LEN as u64;
        if !chunk.offset.is_multiple_of(chunk_len) {
            return Err(bad(format!(
                "upload chunk at offset {} is not at a multiple of {chunk_len} bytes",
                chunk.offset
            )));
        }
        let piece = Piece {
            sha256: chunk.sha256,
            total_len: chunk.total_len,
            chunk_len,
            index: chunk.offset / chunk_len,
            data: &chunk.data,
        };
        self.accept_piece(&piece)
    }

    /// Takes chunk `index` of a file cut in `chunk_len`-byte chunks (the
    /// MQTT transfer's chunks, whose size the sender chooses); returns
    /// (bytes received, complete).
    pub fn accept_piece(&self, chunk: &Piece<'_>) -> Result<(u64, bool), RemoteError> {
        if self.done_path(&chunk.sha256).exists() {
            return Ok((chunk.total_len, true));
        }
        if !(MIN_CHUNK_LEN..=MAX_CHUNK_LEN).contains(&chunk.chunk_len) {
            return Err(bad(format!(
                "chunks of {} bytes refused: chunks must be {MIN_CHUNK_LEN}..={MAX_CHUNK_LEN} bytes",
                chunk.chunk_len
            )));
        }
        if chunk.total_len == 0 || chunk.total_len > MAX_UPLOAD_LEN {
            return Err(RemoteError::new(
                ErrorKind::ResourceExhausted,
                format!(
                    "upload of {} bytes refused: uploads must be 1..={MAX_UPLOAD_LEN} bytes",
                    chunk.total_len
                ),
            ));
        }
        let chunk_len = chunk.chunk_len;
        let index = chunk.index;
        let offset = index.saturating_mul(chunk_len);
        let chunks = chunk.total_len.div_ceil(chunk_len);
        let expected_len = (chunk.total_len - offset.min(chunk.total_len)).min(chunk_len);
        if index >= chunks || chunk.data.len() as u64 != expected_len {
            return Err(bad(format!(
                "upload chunk at offset {offset} with {} bytes does not fit a {}-byte file in {chunk_len}-byte chunks",
                chunk.data.len(),
                chunk.total_len
            )));
        }
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        if !pending.contains_key(&chunk.sha256) {
            if pending.len() >= MAX_PENDING {
                return Err(RemoteError::new(
                    ErrorKind::ResourceExhausted,
                    format!("{MAX_PENDING} uploads are already in progress; finish or retry later"),
                ));
            }
            let part = self.dir.join(format!("{}.part", digest::hex(&chunk.sha256)));
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&part);
            let file = file.map_err(internal)?;
            file.set_len(chunk.total_len).map_err(internal)?;
            pending.insert(
                chunk.sha256,
                Pending {
                    file,
                    total_len: chunk.total_len,
                    chunk_len,
                    have: vec![false; chunks as usize],
                },
            );
        }
        let Some(upload) = pending.get_mut(&chunk.sha256) else {
            return Err(bad("upload vanished"));
        };
        if upload.total_len != chunk.total_len || upload.chunk_len != chunk_len {
            return Err(bad(format!(
                "upload {} was started with {} bytes in {}-byte chunks, this chunk says {} in {chunk_len}",
                digest::hex(&chunk.sha256),
                upload.total_len,
                upload.chunk_len,
                chunk.total_len
            )));
        }
        if let Err(e) = upload.file.write_all_at(chunk.data, offset) {
            // A failed upload leaves nothing behind; the sender starts over.
            pending.remove(&chunk.sha256);
            let _ = fs::remove_file(self.dir.join(format!("{}.part", digest::hex(&chunk.sha256))));
            let kind = if matches!(e.raw_os_error(), Some(28 | 122)) {
                ErrorKind::ResourceExhausted
            } else {
                ErrorKind::Internal
            };
            return Err(RemoteError::new(
                kind,
                format!("upload staging failed and was discarded: {e}"),
            ));
        }
        upload.have[index as usize] = true;
        let received = upload.have.iter().filter(|&&h| h).count() as u64 * chunk_len;
        if !upload.have.iter().all(|&h| h) {
            return Ok((received.min(upload.total_len), false));
        }
        let Some(done) = pending.remove(&chunk.sha256) else {
            return Err(bad("upload vanished"));
        };
        drop(pending);
        self.finish(&chunk.sha256, done)
    }

    fn finish(&self, sha256: &Sha256Digest, upload: Pending) -> Result<(u64, bool), RemoteError> {
        let part = self.dir.join(format!("{}.part", digest::hex(sha256)));
        upload.file.sync_all().map_err(internal)?;
        let actual = digest::sha256_reader(File::open(&part).map_err(internal)?).map_err(internal)?;
        if &actual != sha256 {
            let _ = fs::remove_file(&part);
            return Err(RemoteError::new(
                ErrorKind::InvalidArtifact,
                format!(
                    "upload damaged in transit: announced sha256 {}, received {}; send it again",
                    digest::hex(sha256),
                    digest::hex(&actual)
                ),
            ));
        }
        fs::rename(&part, self.done_path(sha256)).map_err(internal)?;
        Ok((upload.total_len, true))
    }

    /// The path of a completed upload.
    pub fn completed(&self, sha256: &Sha256Digest) -> Result<PathBuf, RemoteError> {
        let path = self.done_path(sha256);
        if path.exists() {
            Ok(path)
        } else {
            Err(RemoteError::new(
                ErrorKind::NotFound,
                format!(
                    "no completed upload with sha256 {}: upload the file first",
                    digest::hex(sha256)
                ),
            ))
        }
    }

    /// The indexes of the chunks an upload in progress still lacks, or
    /// `None` if it is not in progress (complete, or never started).
    pub fn missing(&self, sha256: &Sha256Digest) -> Option<Vec<u64>> {
        let pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        let upload = pending.get(sha256)?;
        Some(
            (0..upload.have.len() as u64)
                .filter(|&i| !upload.have[i as usize])
                .collect(),
        )
    }

    /// Whether an upload with this digest is complete.
    pub fn is_complete(&self, sha256: &Sha256Digest) -> bool {
        self.done_path(sha256).exists()
    }

    /// Whether an upload with this digest is in progress or complete.
    pub fn is_known(&self, sha256: &Sha256Digest) -> bool {
        self.done_path(sha256).exists()
            || self
                .pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .contains_key(sha256)
    }

    /// Deletes completed uploads older than `age` that nobody installed;
    /// returns how many and their bytes.
    pub fn remove_stale(&self, age: std::time::Duration) -> (u32, u64) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return (0, 0);
        };
        let mut removed = (0, 0);
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = entry.metadata() else { continue };
            let stale = meta
                .modified()
                .ok()
                .and_then(|m| m.elapsed().ok())
                .is_some_and(|e| e >= age);
            if path.extension().is_some_and(|e| e == "done") && stale && fs::remove_file(&path).is_ok() {
                removed.0 += 1;
                removed.1 += meta.len();
            }
        }
        removed
    }

    /// Forgets a completed upload once it has been installed.
    pub fn discard(&self, sha256: &Sha256Digest) {
        let _ = fs::remove_file(self.done_path(sha256));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(data: &[u8]) -> Vec<Upload> {
        let sha256 = digest::sha256(data);
        data.chunks(UPLOAD_CHUNK_LEN)
            .enumerate()
            .map(|(i, c)| Upload {
                sha256,
                total_len: data.len() as u64,
                offset: (i * UPLOAD_CHUNK_LEN) as u64,
                data: c.to_vec(),
            })
            .collect()
    }

    #[test]
    fn an_interrupted_transfer_knows_exactly_which_chunks_it_still_lacks() {
        let dir = tempfile::tempdir().unwrap();
        let uploads = Uploads::open(dir.path()).unwrap();
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 253) as u8).collect();
        let sha256 = digest::sha256(&data);
        let piece = |index: u64| Piece {
            sha256,
            total_len: data.len() as u64,
            chunk_len: 4096,
            index,
            data: &data[(index as usize * 4096)..((index as usize + 1) * 4096).min(data.len())],
        };
        assert_eq!(uploads.missing(&sha256), None, "not started");
        assert_eq!(uploads.accept_piece(&piece(2)).unwrap(), (4096, false));
        assert_eq!(uploads.missing(&sha256), Some(vec![0, 1]));
        // A chunk of another size, for the same file, is refused by name.
        let odd = Piece {
            chunk_len: 2048,
            ..piece(0)
        };
        assert!(uploads.accept_piece(&odd).unwrap_err().message.contains("2048"));
        assert_eq!(uploads.accept_piece(&piece(0)).unwrap(), (8192, false));
        assert_eq!(uploads.missing(&sha256), Some(vec![1]));
        assert_eq!(uploads.accept_piece(&piece(1)).unwrap(), (10_000, true));
        assert_eq!(uploads.missing(&sha256), None, "complete");
        assert!(uploads.is_complete(&sha256));
        // Chunk sizes outside 1 KiB ..= 240 KiB are refused.
        let tiny = Piece {
            sha256: digest::sha256(b"another file"),
            chunk_len: 512,
            data: &data[..512],
            ..piece(0)
        };
        assert!(uploads.accept_piece(&tiny).unwrap_err().message.contains("512"));
    }

    #[test]
    fn chunks_in_any_order_and_repeated_complete_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let uploads = Uploads::open(dir.path()).unwrap();
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let mut parts = chunks(&data);
        parts.reverse();
        parts.insert(1, parts[0].clone());
        let last = parts.len() - 1;
        for (i, part) in parts.iter().enumerate() {
            let (_, complete) = uploads.accept(part).unwrap();
            assert_eq!(complete, i == last, "chunk {i}");
        }
        let path = uploads.completed(&digest::sha256(&data)).unwrap();
        assert_eq!(fs::read(path).unwrap(), data);
    }

    #[test]
    fn a_damaged_upload_is_refused_and_discarded() {
        let dir = tempfile::tempdir().unwrap();
        let uploads = Uploads::open(dir.path()).unwrap();
        let mut parts = chunks(&[7u8; 1000]);
        parts[0].data[10] = 8;
        let err = uploads.accept(&parts[0]).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidArtifact);
        assert!(uploads.completed(&parts[0].sha256).is_err());
    }

    #[test]
    fn misfit_chunks_and_huge_uploads_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let uploads = Uploads::open(dir.path()).unwrap();
        let mut part = chunks(&[1u8; 100]).remove(0);
        part.offset = 3;
        assert_eq!(uploads.accept(&part).unwrap_err().kind, ErrorKind::BadRequest);
        part.offset = 0;
        part.total_len = MAX_UPLOAD_LEN + 1;
        assert_eq!(uploads.accept(&part).unwrap_err().kind, ErrorKind::ResourceExhausted);
    }
}
