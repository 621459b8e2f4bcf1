//! The content-addressed artifact store.
//!
//! ```text
//! <data-dir>/artifacts/<code-sha256>.code   wasmtime's precompiled image (mmap'd)
//! <data-dir>/artifacts/<code-sha256>.meta   sealed ArtifactHeader
//! <data-dir>/artifacts/<code-sha256>.wasm   the source it was compiled from, when
//!                                           the daemon compiled it (kept to
//!                                           recompile after an engine change)
//! <data-dir>/artifacts/groups/<group>/<code-sha256>.code
//!                                           hard links for worker groups
//!                                           (group_links.rs)
//! ```
//!
//! The code file is written first and the `.meta` last, so an artifact whose
//! `.meta` exists is complete; a crash in between leaves an orphan `.code`
//! that `open` removes. Every write goes through [`crate::sys::fs`].

use super::format::{self, ArtifactHeader, ArtifactRef, FormatError};
use super::group_links::GroupLinks;
use super::load::{self, LoadError, Program, check_fingerprint, check_variant};
use crate::digest::{self, Sha256Digest};
use crate::engine::{EngineProfile, EngineSet};
use crate::sys::fs as sysfs;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use wasmtime::Engine;

const CODE_EXT: &str = "code";
const META_EXT: &str = "meta";
const SOURCE_EXT: &str = "wasm";

/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("artifact store {dir}: {source}")]
    Io {
        dir: String,
        #[source]
        source: io::Error,
    },
    #[error("artifact {id} is not in the store")]
    Missing { id: String },
    #[error("stored artifact {id} is damaged: {reason}; reinstall it")]
    Damaged { id: String, reason: String },
    #[error(transparent)]
    Load(#[from] LoadError),
}

/// A directory of verified artifacts, addressed by code digest.
#[derive(Debug, Clone)]
pub struct ArtifactStore {
    dir: PathBuf,
}

impl ArtifactStore {
    /// Opens (creating if needed) the store under `data_dir` and removes
    /// what an interrupted write left behind.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        let dir = data_dir.join("artifacts");
        let io_err = |source| StoreError::Io {
            dir: dir.display().to_string(),
            source,
        };
        fs::create_dir_all(&dir).map_err(io_err)?;
        sysfs::remove_stale_temps(&dir).map_err(io_err)?;
        let store = Self { dir };
        store.remove_orphan_code()?;
        store.group_links().remove_stale(&store.dir).map_err(store.io_err())?;
        Ok(store)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The worker groups' links to code files (`group_links.rs`).
    pub fn group_links(&self) -> GroupLinks {
        GroupLinks::in_store(&self.dir)
    }

    fn path(&self, digest: &Sha256Digest, ext: &str) -> PathBuf {
        self.dir.join(format!("{}.{ext}", digest::hex(digest)))
    }

    fn io_err(&self) -> impl Fn(io::Error) -> StoreError + '_ {
        |source| StoreError::Io {
            dir: self.dir.display().to_string(),
            source,
        }
    }

    /// Stores a decoded (hence verified) artifact; storing one that is
    /// already there is a no-op. Returns its id.
    pub fn put(&self, artifact: &ArtifactRef<'_>) -> Result<String, StoreError> {
        let digest = &artifact.header.code_sha256;
        if self.path(digest, META_EXT).exists() {
            return Ok(artifact.header.id());
        }
        let hex = digest::hex(digest);
        let code =
            sysfs::write_atomic(&self.dir, &format!("{hex}.{CODE_EXT}"), artifact.code).map_err(self.io_err())?;
        let meta = sysfs::write_atomic(
            &self.dir,
            &format!("{hex}.{META_EXT}"),
            &format::encode_sealed_header(&artifact.header),
        );
        if let Err(e) = meta {
            // A code file without its header is nothing; leave nothing.
            let _ = fs::remove_file(&code);
            return Err(self.io_err()(e));
        }
        Ok(hex)
    }

    /// Decodes an artifact file image and stores it.
    pub fn put_bytes(&self, bytes: &[u8], origin: &Path) -> Result<String, StoreError> {
        let artifact = format::decode(bytes).map_err(|source| LoadError::Format {
            path: origin.display().to_string(),
            source,
        })?;
        self.put(&artifact)
    }

    /// Whether the artifact `id` is stored (complete).
    pub fn contains(&self, id: &str) -> bool {
        digest::parse_hex(id).is_some_and(|d| self.path(&d, META_EXT).exists())
    }

    /// Keeps `source`, the `.wasm` (or `.wat`) the stored artifact `id`
    /// was compiled from here, beside it: what the daemon compiles again
    /// when its engine changes.
    pub fn put_source(&self, id: &str, source: &[u8]) -> Result<(), StoreError> {
        let digest = digest::parse_hex(id).ok_or_else(|| StoreError::Missing { id: id.to_owned() })?;
        sysfs::write_atomic(&self.dir, &format!("{}.{SOURCE_EXT}", digest::hex(&digest)), source)
            .map_err(self.io_err())?;
        Ok(())
    }

    /// The source kept beside the artifact `id`, if any.
    pub fn source(&self, id: &str) -> Option<Vec<u8>> {
        let digest = digest::parse_hex(id)?;
        fs::read(self.path(&digest, SOURCE_EXT)).ok()
    }

    /// Bytes the artifact `id` takes on disk (code, header and kept source).
    pub fn size_of(&self, id: &str) -> u64 {
        let Some(digest) = digest::parse_hex(id) else { return 0 };
        [CODE_EXT, META_EXT, SOURCE_EXT]
            .iter()
            .filter_map(|ext| fs::metadata(self.path(&digest, ext)).ok())
            .map(|m| m.len())
            .sum()
    }

    /// The header of a stored artifact.
    pub fn header(&self, id: &str) -> Result<ArtifactHeader, StoreError> {
        let digest = digest::parse_hex(id).ok_or_else(|| StoreError::Missing { id: id.to_owned() })?;
        let bytes = match fs::read(self.path(&digest, META_EXT)) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(StoreError::Missing { id: id.to_owned() }),
            Err(e) => return Err(self.io_err()(e)),
        };
        let header = format::decode_sealed_header(&bytes).map_err(|e: FormatError| StoreError::Damaged {
            id: id.to_owned(),
            reason: e.to_string(),
        })?;
        if header.code_sha256 != digest {
            return Err(StoreError::Damaged {
                id: id.to_owned(),
                reason: "its header names another artifact".into(),
            });
        }
        Ok(header)
    }

    /// Checks a stored artifact against its sealed record (fingerprint,
    /// code file present with the recorded size) and deserializes it by
    /// mmap. The code is not hashed again: it was when it was stored
    /// ([`ArtifactStore::put`]), and the store is trusted (docs/security.md).
    pub fn load(&self, engine: &Engine, profile: &EngineProfile, id: &str) -> Result<Program, StoreError> {
        let header = self.header(id)?;
        let code_path = self.path(&header.code_sha256, CODE_EXT);
        check_fingerprint(&header, profile, &code_path, None)?;
        self.check_code_file(id, &header, &code_path)?;
        Ok(load::load_verified_file(engine, &header, &code_path)?)
    }

    /// [`ArtifactStore::load`] into whichever engine of `engines` the
    /// artifact was compiled for; also says whether that is the
    /// fuel-metered one.
    pub fn load_in(&self, engines: &EngineSet, id: &str) -> Result<(Program, bool), StoreError> {
        let header = self.header(id)?;
        let code_path = self.path(&header.code_sha256, CODE_EXT);
        let metered = check_variant(&header, engines, &code_path, None)?;
        self.check_code_file(id, &header, &code_path)?;
        let engine = engines.engine(metered).map_err(|e| StoreError::Damaged {
            id: id.to_owned(),
            reason: format!("no engine can load it: {e}"),
        })?;
        Ok((load::load_verified_file(engine, &header, &code_path)?, metered))
    }

    /// Opens a stored artifact's code file for a worker to map, after
    /// checking it against its sealed record (size; the worker's wasmtime
    /// checks the ELF header and engine). The descriptor is read from the
    /// start by whoever receives it.
    pub fn open_code(&self, id: &str) -> Result<File, StoreError> {
        let header = self.header(id)?;
        let code_path = self.path(&header.code_sha256, CODE_EXT);
        self.open_checked(id, &header, &code_path)
    }

    /// [`Self::open_code`] through `group`'s link to the code file, so that
    /// the group's worker may read it by its descriptor's name and share
    /// it with other workers (`group_links.rs`). Without a link (a file
    /// system without hard links) it opens the store's file: the worker
    /// then shares less, and runs the same.
    pub fn open_code_in_group(&self, id: &str, group: &str) -> Result<File, StoreError> {
        let header = self.header(id)?;
        let code_path = self.path(&header.code_sha256, CODE_EXT);
        let path = self.group_links().link(group, &code_path).unwrap_or_else(|e| {
            log::warn!("cannot link {} for worker group `{group}`: {e}", code_path.display());
            code_path
        });
        self.open_checked(id, &header, &path)
    }

    fn open_checked(&self, id: &str, header: &ArtifactHeader, code_path: &Path) -> Result<File, StoreError> {
        let file = self.check_code_file(id, header, code_path)?;
        let detected = wasmtime::Engine::detect_precompiled_file(code_path).ok().flatten();
        if detected.is_none() {
            return Err(StoreError::Damaged {
                id: id.to_owned(),
                reason: "its code file is not a wasmtime precompiled image".into(),
            });
        }
        Ok(file)
    }

    /// Opens the code file and refuses one whose size differs from the
    /// sealed header's record (truncated, or replaced by another file).
    fn check_code_file(&self, id: &str, header: &ArtifactHeader, code_path: &Path) -> Result<File, StoreError> {
        let damaged = |reason: String| StoreError::Damaged {
            id: id.to_owned(),
            reason,
        };
        let file = File::open(code_path).map_err(|e| damaged(format!("its code file cannot be read ({e})")))?;
        let len = file
            .metadata()
            .map_err(|e| damaged(format!("its code file cannot be read ({e})")))?
            .len();
        if len != header.code_len {
            return Err(damaged(format!(
                "its code file has {len} bytes, its sealed header records {}",
                header.code_len
            )));
        }
        Ok(file)
    }

    /// Hashes a stored artifact's code file against its sealed header: what
    /// loading no longer does at every start. For checks on demand (a
    /// scrub after suspected storage damage).
    pub fn verify(&self, id: &str) -> Result<(), StoreError> {
        let header = self.header(id)?;
        let code_path = self.path(&header.code_sha256, CODE_EXT);
        let file = self.check_code_file(id, &header, &code_path)?;
        let actual = digest::sha256_reader(file).map_err(self.io_err())?;
        if actual != header.code_sha256 {
            return Err(StoreError::Damaged {
                id: id.to_owned(),
                reason: format!("its code hashes to {}", digest::hex(&actual)),
            });
        }
        Ok(())
    }

    /// Ids of every complete artifact in the store.
    pub fn list(&self) -> Result<Vec<String>, StoreError> {
        let mut ids = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(self.io_err())? {
            let name = entry.map_err(self.io_err())?.file_name();
            let name = name.to_string_lossy();
            if let Some(id) = name.strip_suffix(&format!(".{META_EXT}"))
                && digest::parse_hex(id).is_some()
            {
                ids.push(id.to_owned());
            }
        }
        ids.sort();
        Ok(ids)
    }

    /// Removes an artifact: `.meta` first, so a crash leaves at worst an
    /// orphan code file (and kept source), which the next `open` deletes.
    pub fn remove(&self, id: &str) -> Result<(), StoreError> {
        let digest = digest::parse_hex(id).ok_or_else(|| StoreError::Missing { id: id.to_owned() })?;
        sysfs::remove_durably(&self.path(&digest, META_EXT)).map_err(self.io_err())?;
        let source = self.path(&digest, SOURCE_EXT);
        if source.exists() {
            sysfs::remove_durably(&source).map_err(self.io_err())?;
        }
        let code = self.path(&digest, CODE_EXT);
        if let Some(name) = code.file_name() {
            self.group_links()
                .unlink_everywhere(&name.to_string_lossy())
                .map_err(self.io_err())?;
        }
        sysfs::remove_durably(&code).map_err(self.io_err())
    }

    fn remove_orphan_code(&self) -> Result<(), StoreError> {
        for entry in fs::read_dir(&self.dir).map_err(self.io_err())? {
            let path = entry.map_err(self.io_err())?.path();
            if path.extension().is_some_and(|ext| ext == CODE_EXT || ext == SOURCE_EXT)
                && !path.with_extension(META_EXT).exists()
            {
                log::warn!(
                    "removing {}: an interrupted store left it without its header",
                    path.display()
                );
                sysfs::remove_durably(&path).map_err(self.io_err())?;
            }
        }
        Ok(())
    }
}
