//! Files arriving in chunks (`Request::Upload`), streamed to disk under
//! `<data>/uploads/` and verified against their sha256 before anything
//! uses them. Chunks may arrive in any order and be repeated; an upload
//! interrupted by a disconnect, or by a restart of the daemon, resumes
//! where it stopped.
//!
//! On disk, an upload in progress is `<sha256>.part` (the file, at its
//! full length, chunks written at their offsets) and `<sha256>.chunks`,
//! its ledger: a header (magic, total length, chunk length) and, per
//! chunk, the first 8 bytes of the chunk's sha256 once it is written (zero
//! while missing). A chunk's entry is written after its bytes, with no
//! fsync for either: a restart after a crash or power loss hashes every
//! chunk the ledger names again and asks again for those whose bytes did
//! not survive, so the ledger is never trusted further than the disk.
//! A complete file becomes `<sha256>.done` once its whole sha256 matches.

use crate::digest::{self, Sha256Digest};
use crate::protocol::frame::UPLOAD_CHUNK_LEN;
use crate::protocol::{ErrorKind, RemoteError, Upload};
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// Largest file that can be uploaded.
pub const MAX_UPLOAD_LEN: u64 = 64 * 1024 * 1024;
/// Uploads in progress at once.
pub const MAX_PENDING: usize = 8;
/// Smallest and largest chunk a sender may choose.
pub const MIN_CHUNK_LEN: u64 = 1024;
pub const MAX_CHUNK_LEN: u64 = 240 * 1024;
/// Uploads (partial or complete) untouched for this long are discarded
/// when the daemon starts; `arcella gc` discards them sooner.
pub const KEEP_ACROSS_RESTART: Duration = Duration::from_secs(24 * 3600);

/// The ledger's first bytes; a new layout gets a new magic.
const LEDGER_MAGIC: &[u8; 8] = b"ARCUPL01";
/// Magic, total length, chunk length.
const LEDGER_HEADER_LEN: u64 = 24;
/// Bytes of a chunk's sha256 its ledger entry keeps.
const ENTRY_LEN: usize = 8;

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
    /// `<sha256>.chunks`, written in place (one entry per chunk).
    ledger: File,
    total_len: u64,
    chunk_len: u64,
    have: Vec<bool>,
}

impl Pending {
    /// Bytes of chunk `index` in the file.
    fn chunk_range(&self, index: u64) -> (u64, usize) {
        let offset = index * self.chunk_len;
        (offset, (self.total_len - offset).min(self.chunk_len) as usize)
    }
}

/// A chunk's ledger entry: the start of its sha256, never all zero (the
/// mark of a missing chunk).
fn entry(data: &[u8]) -> [u8; ENTRY_LEN] {
    let mut entry = [0u8; ENTRY_LEN];
    entry.copy_from_slice(&digest::sha256(data)[..ENTRY_LEN]);
    if entry == [0; ENTRY_LEN] {
        entry[0] = 1;
    }
    entry
}

fn ledger_header(total_len: u64, chunk_len: u64) -> Vec<u8> {
    let mut header = Vec::with_capacity(LEDGER_HEADER_LEN as usize);
    header.extend_from_slice(LEDGER_MAGIC);
    header.extend_from_slice(&total_len.to_le_bytes());
    header.extend_from_slice(&chunk_len.to_le_bytes());
    header
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
    /// Opens the staging directory and takes up the uploads a previous run
    /// left: each partial one's ledger is checked against the bytes on
    /// disk, and it resumes with the chunks that survived. Damaged ones,
    /// ones untouched for [`KEEP_ACROSS_RESTART`], and all but the
    /// [`MAX_PENDING`] most recent partial ones are discarded.
    pub fn open(data_dir: &Path) -> std::io::Result<Self> {
        let dir = data_dir.join("uploads");
        fs::create_dir_all(&dir)?;
        crate::sys::fs::remove_stale_temps(&dir)?;
        let uploads = Self {
            dir,
            pending: Mutex::new(HashMap::new()),
        };
        uploads.resume_all()?;
        let (expired, _) = uploads.remove_stale(KEEP_ACROSS_RESTART);
        if expired > 0 {
            log::info!("uploads: discarded {expired} left untouched for a day or more");
        }
        Ok(uploads)
    }

    fn done_path(&self, sha256: &Sha256Digest) -> PathBuf {
        self.dir.join(format!("{}.done", digest::hex(sha256)))
    }

    fn part_path(&self, sha256: &Sha256Digest) -> PathBuf {
        self.dir.join(format!("{}.part", digest::hex(sha256)))
    }

    fn ledger_name(sha256: &Sha256Digest) -> String {
        format!("{}.chunks", digest::hex(sha256))
    }

    /// Deletes an upload in progress, both its files.
    fn discard_partial(&self, sha256: &Sha256Digest) {
        let _ = fs::remove_file(self.part_path(sha256));
        let _ = fs::remove_file(self.dir.join(Self::ledger_name(sha256)));
    }

    /// Takes up every partial upload on disk (newest first, at most
    /// [`MAX_PENDING`]); removes ledgers without a file and the reverse.
    fn resume_all(&self) -> std::io::Result<()> {
        let mut found: Vec<(std::time::SystemTime, Sha256Digest)> = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            let path = entry.path();
            let (Some(stem), Some(ext)) = (
                path.file_stem().and_then(|s| s.to_str()),
                path.extension().and_then(|e| e.to_str()),
            ) else {
                continue;
            };
            let Some(sha256) = digest::parse_hex(stem) else {
                continue;
            };
            match ext {
                "part" => {
                    let modified = entry.metadata()?.modified()?;
                    found.push((modified, sha256));
                }
                "chunks" if !self.part_path(&sha256).exists() => {
                    let _ = fs::remove_file(&path);
                }
                _ => {}
            }
        }
        found.sort_by_key(|(modified, _)| std::cmp::Reverse(*modified));
        for (i, (_, sha256)) in found.iter().enumerate() {
            let hex = digest::hex(sha256);
            if i >= MAX_PENDING {
                log::warn!("uploads: {hex}: discarded, more than {MAX_PENDING} partial uploads were left");
                self.discard_partial(sha256);
                continue;
            }
            match self.resume(sha256) {
                Ok((have, chunks)) => log::info!("uploads: {hex}: resumed with {have} of {chunks} chunks"),
                Err(reason) => {
                    log::warn!("uploads: {hex}: discarded: {reason}");
                    self.discard_partial(sha256);
                }
            }
        }
        Ok(())
    }

    /// Takes up one partial upload: its ledger must fit the limits and its
    /// file, and every chunk it names must still hash as recorded (those
    /// that do not are asked for again). Returns (chunks held, chunks).
    fn resume(&self, sha256: &Sha256Digest) -> Result<(u64, u64), String> {
        let open = |path: &Path| {
            OpenOptions::new()
                .read(true)
                .write(true)
                .open(path)
                .map_err(|e| format!("{}: {e}", path.display()))
        };
        let file = open(&self.part_path(sha256))?;
        let ledger = open(&self.dir.join(Self::ledger_name(sha256)))?;
        let mut header = [0u8; LEDGER_HEADER_LEN as usize];
        ledger
            .read_exact_at(&mut header, 0)
            .map_err(|e| format!("ledger unreadable: {e}"))?;
        let number = |at: usize| header[at..at + 8].try_into().map(u64::from_le_bytes).unwrap_or(0);
        let (total_len, chunk_len) = (number(8), number(16));
        if &header[..8] != LEDGER_MAGIC
            || !(MIN_CHUNK_LEN..=MAX_CHUNK_LEN).contains(&chunk_len)
            || !(1..=MAX_UPLOAD_LEN).contains(&total_len)
        {
            return Err("ledger header damaged".into());
        }
        let chunks = total_len.div_ceil(chunk_len);
        let ledger_len = ledger.metadata().map_err(|e| e.to_string())?.len();
        if ledger_len != LEDGER_HEADER_LEN + chunks * ENTRY_LEN as u64 {
            return Err(format!("ledger of {ledger_len} bytes does not fit {chunks} chunks"));
        }
        if file.metadata().map_err(|e| e.to_string())?.len() != total_len {
            return Err(format!("file is not {total_len} bytes long"));
        }
        let mut upload = Pending {
            file,
            ledger,
            total_len,
            chunk_len,
            have: vec![false; chunks as usize],
        };
        let mut entries = vec![0u8; chunks as usize * ENTRY_LEN];
        upload
            .ledger
            .read_exact_at(&mut entries, LEDGER_HEADER_LEN)
            .map_err(|e| format!("ledger unreadable: {e}"))?;
        let mut data = vec![0u8; chunk_len as usize];
        for index in 0..chunks {
            let at = index as usize * ENTRY_LEN;
            let recorded = &entries[at..at + ENTRY_LEN];
            if recorded == [0; ENTRY_LEN] {
                continue;
            }
            let (offset, len) = upload.chunk_range(index);
            let bytes = &mut data[..len];
            let intact = upload.file.read_exact_at(bytes, offset).is_ok() && entry(bytes) == recorded;
            if intact {
                upload.have[index as usize] = true;
            } else {
                // Its bytes did not reach the disk: ask for it again.
                let _ = upload
                    .ledger
                    .write_all_at(&[0; ENTRY_LEN], LEDGER_HEADER_LEN + index * ENTRY_LEN as u64);
            }
        }
        let have = upload.have.iter().filter(|&&h| h).count() as u64;
        if have == chunks {
            // Complete but not yet verified when the daemon stopped.
            self.finish(sha256, upload).map_err(|e| e.message)?;
        } else {
            self.pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(*sha256, upload);
        }
        Ok((have, chunks))
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
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(self.part_path(&chunk.sha256));
            let file = file.map_err(internal)?;
            let started = (|| {
                file.set_len(chunk.total_len)?;
                // The file first, then its ledger: a ledger never exists
                // without its file.
                let mut ledger = ledger_header(chunk.total_len, chunk_len);
                ledger.resize(ledger.len() + chunks as usize * ENTRY_LEN, 0);
                let name = Self::ledger_name(&chunk.sha256);
                crate::sys::fs::write_atomic(&self.dir, &name, &ledger)?;
                OpenOptions::new().read(true).write(true).open(self.dir.join(name))
            })();
            let ledger = match started {
                Ok(ledger) => ledger,
                Err(e) => {
                    self.discard_partial(&chunk.sha256);
                    return Err(internal(e));
                }
            };
            pending.insert(
                chunk.sha256,
                Pending {
                    file,
                    ledger,
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
        // The bytes, then their ledger entry (see the module's doc).
        let written = upload.file.write_all_at(chunk.data, offset).and_then(|()| {
            upload
                .ledger
                .write_all_at(&entry(chunk.data), LEDGER_HEADER_LEN + index * ENTRY_LEN as u64)
        });
        if let Err(e) = written {
            // A failed upload leaves nothing behind; the sender starts over.
            pending.remove(&chunk.sha256);
            self.discard_partial(&chunk.sha256);
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
        let part = self.part_path(sha256);
        upload.file.sync_all().map_err(internal)?;
        let actual = digest::sha256_reader(File::open(&part).map_err(internal)?).map_err(internal)?;
        if &actual != sha256 {
            self.discard_partial(sha256);
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
        let _ = fs::remove_file(self.dir.join(Self::ledger_name(sha256)));
        crate::sys::fs::sync_dir(&self.dir).map_err(internal)?;
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

    /// Deletes completed uploads older than `age` that nobody installed,
    /// and uploads in progress that received nothing for `age`; returns
    /// how many and their bytes.
    pub fn remove_stale(&self, age: Duration) -> (u32, u64) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return (0, 0);
        };
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        let mut removed = (0, 0);
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = entry.metadata() else { continue };
            let stale = meta
                .modified()
                .ok()
                .and_then(|m| m.elapsed().ok())
                .is_some_and(|e| e >= age);
            if !stale {
                continue;
            }
            let ext = path.extension().and_then(|e| e.to_str());
            if ext == Some("done") && fs::remove_file(&path).is_ok() {
                removed.0 += 1;
                removed.1 += meta.len();
            }
            // A partial upload's file is touched by every chunk it gets.
            if ext == Some("part")
                && let Some(sha256) = path.file_stem().and_then(|s| s.to_str()).and_then(digest::parse_hex)
            {
                pending.remove(&sha256);
                self.discard_partial(&sha256);
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

    /// A 10 000-byte file in 4 KiB chunks (three: 4096, 4096, 1808 bytes).
    fn three_chunks() -> (Vec<u8>, Sha256Digest) {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 249) as u8).collect();
        let sha256 = digest::sha256(&data);
        (data, sha256)
    }

    fn piece(data: &[u8], index: u64) -> Piece<'_> {
        Piece {
            sha256: digest::sha256(data),
            total_len: data.len() as u64,
            chunk_len: 4096,
            index,
            data: &data[(index as usize * 4096)..((index as usize + 1) * 4096).min(data.len())],
        }
    }

    fn files(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir.join("uploads"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_restart_used_to_wipe_partial_uploads_now_they_resume_where_they_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let (data, sha256) = three_chunks();
        let uploads = Uploads::open(dir.path()).unwrap();
        uploads.accept_piece(&piece(&data, 0)).unwrap();
        uploads.accept_piece(&piece(&data, 2)).unwrap();
        drop(uploads);
        let uploads = Uploads::open(dir.path()).unwrap();
        assert_eq!(uploads.missing(&sha256), Some(vec![1]), "only the chunk never received");
        assert!(uploads.is_known(&sha256));
        assert_eq!(uploads.accept_piece(&piece(&data, 1)).unwrap(), (10_000, true));
        assert_eq!(fs::read(uploads.completed(&sha256).unwrap()).unwrap(), data);
        // The ledger goes with the partial file; the completed file stays
        // across a restart too.
        let hex = digest::hex(&sha256);
        assert_eq!(files(dir.path()), vec![format!("{hex}.done")]);
        drop(uploads);
        assert!(Uploads::open(dir.path()).unwrap().is_complete(&sha256));
    }

    #[test]
    fn a_chunk_whose_bytes_did_not_reach_the_disk_is_asked_for_again() {
        let dir = tempfile::tempdir().unwrap();
        let (data, sha256) = three_chunks();
        let uploads = Uploads::open(dir.path()).unwrap();
        uploads.accept_piece(&piece(&data, 0)).unwrap();
        uploads.accept_piece(&piece(&data, 1)).unwrap();
        drop(uploads);
        // Power loss: chunk 1's ledger entry survived, its bytes did not.
        let part = OpenOptions::new()
            .write(true)
            .open(dir.path().join(format!("uploads/{}.part", digest::hex(&sha256))))
            .unwrap();
        part.write_all_at(&[0u8; 100], 4096 + 50).unwrap();
        let uploads = Uploads::open(dir.path()).unwrap();
        assert_eq!(uploads.missing(&sha256), Some(vec![1, 2]));
        uploads.accept_piece(&piece(&data, 2)).unwrap();
        assert_eq!(uploads.accept_piece(&piece(&data, 1)).unwrap(), (10_000, true));
        assert_eq!(fs::read(uploads.completed(&sha256).unwrap()).unwrap(), data);
    }

    #[test]
    fn an_upload_complete_on_disk_but_not_yet_verified_is_verified_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let (data, sha256) = three_chunks();
        let uploads = Uploads::open(dir.path()).unwrap();
        uploads.accept_piece(&piece(&data, 0)).unwrap();
        uploads.accept_piece(&piece(&data, 1)).unwrap();
        // The last chunk was written, and the daemon died before checking
        // the whole file.
        let last = piece(&data, 2);
        {
            let pending = uploads.pending.lock().unwrap();
            let upload = &pending[&sha256];
            upload.file.write_all_at(last.data, 8192).unwrap();
            upload
                .ledger
                .write_all_at(&entry(last.data), LEDGER_HEADER_LEN + 2 * ENTRY_LEN as u64)
                .unwrap();
        }
        drop(uploads);
        let uploads = Uploads::open(dir.path()).unwrap();
        assert!(uploads.is_complete(&sha256));
        assert_eq!(uploads.missing(&sha256), None);
    }

    #[test]
    fn a_damaged_ledger_discards_its_upload_and_the_rest_resume() {
        let dir = tempfile::tempdir().unwrap();
        let (data, sha256) = three_chunks();
        let other: Vec<u8> = vec![3u8; 5000];
        let uploads = Uploads::open(dir.path()).unwrap();
        uploads.accept_piece(&piece(&data, 0)).unwrap();
        uploads.accept_piece(&piece(&other, 0)).unwrap();
        drop(uploads);
        let ledger = dir.path().join(format!("uploads/{}.chunks", digest::hex(&sha256)));
        fs::write(&ledger, b"not a ledger").unwrap();
        // A ledger without its file, and a temp file a crash left.
        fs::write(dir.path().join(format!("uploads/{}.chunks", "ab".repeat(32))), b"x").unwrap();
        fs::write(dir.path().join("uploads/.tmp-1-2-x.chunks"), b"x").unwrap();
        let uploads = Uploads::open(dir.path()).unwrap();
        assert_eq!(uploads.missing(&sha256), None, "discarded");
        assert!(!uploads.is_known(&sha256));
        assert_eq!(uploads.missing(&digest::sha256(&other)), Some(vec![1]));
        let hex = digest::hex(&digest::sha256(&other));
        assert_eq!(files(dir.path()), vec![format!("{hex}.chunks"), format!("{hex}.part")]);
        // The discarded one starts over, from nothing.
        assert_eq!(uploads.accept_piece(&piece(&data, 1)).unwrap(), (4096, false));
        assert_eq!(uploads.missing(&sha256), Some(vec![0, 2]));
    }

    #[test]
    fn partial_uploads_kept_across_a_restart_are_bounded_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let contents: Vec<Vec<u8>> = (0..MAX_PENDING + 2).map(|i| vec![i as u8; 5000]).collect();
        // Two runs' worth: one staging holds at most MAX_PENDING at once.
        let first = Uploads::open(dir.path()).unwrap();
        let second = Uploads::open(dir.path()).unwrap();
        let hour = Duration::from_secs(3600);
        for (i, data) in contents.iter().enumerate() {
            let staging = if i < MAX_PENDING { &first } else { &second };
            staging.accept_piece(&piece(data, 0)).unwrap();
            // The first two are the oldest.
            let part = dir
                .path()
                .join(format!("uploads/{}.part", digest::hex(&digest::sha256(data))));
            let when = std::time::SystemTime::now() - hour + Duration::from_secs(i as u64 * 60);
            File::options()
                .write(true)
                .open(part)
                .unwrap()
                .set_modified(when)
                .unwrap();
        }
        drop((first, second));
        let uploads = Uploads::open(dir.path()).unwrap();
        for (i, data) in contents.iter().enumerate() {
            let kept = uploads.missing(&digest::sha256(data)).is_some();
            assert_eq!(kept, i >= 2, "upload {i}");
        }
        assert_eq!(files(dir.path()).len(), 2 * MAX_PENDING);
    }

    #[test]
    fn partial_uploads_that_stopped_receiving_expire_and_free_their_slot() {
        let dir = tempfile::tempdir().unwrap();
        let (data, sha256) = three_chunks();
        let uploads = Uploads::open(dir.path()).unwrap();
        uploads.accept_piece(&piece(&data, 0)).unwrap();
        assert_eq!(uploads.remove_stale(Duration::from_secs(3600)), (0, 0), "still fresh");
        let part = dir.path().join(format!("uploads/{}.part", digest::hex(&sha256)));
        let two_hours_ago = std::time::SystemTime::now() - Duration::from_secs(7200);
        File::options()
            .write(true)
            .open(&part)
            .unwrap()
            .set_modified(two_hours_ago)
            .unwrap();
        assert_eq!(uploads.remove_stale(Duration::from_secs(3600)), (1, 10_000));
        assert_eq!(uploads.missing(&sha256), None);
        assert!(files(dir.path()).is_empty());
        // Left for longer than a day, a partial upload is not taken up at
        // start either.
        uploads.accept_piece(&piece(&data, 0)).unwrap();
        let two_days_ago = std::time::SystemTime::now() - 2 * KEEP_ACROSS_RESTART;
        File::options()
            .write(true)
            .open(&part)
            .unwrap()
            .set_modified(two_days_ago)
            .unwrap();
        drop(uploads);
        let uploads = Uploads::open(dir.path()).unwrap();
        assert_eq!(uploads.missing(&sha256), None);
        assert!(files(dir.path()).is_empty());
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
