//! Verified artifact → wasmtime `Module`/`Component`.
//!
//! The only place Arcella calls wasmtime's `unsafe` deserialize. Before it
//! does, the artifact's digests have been checked (by the decoder or the
//! store) and its fingerprint compared with the engine's.

use super::format::{self, ArtifactHeader, ArtifactRef, FormatError};
use super::kind::ArtifactKind;
use crate::engine::file_code::FileCode;
use crate::engine::{EngineProfile, EngineSet};
use crate::fingerprint::EngineFingerprint;
use crate::sys::code_map::MappedFile;
use std::path::Path;
use wasmtime::Engine;
use wasmtime::component::Component;
use wasmtime::{Module, Precompiled};

/// Loaded code, ready to instantiate.
#[derive(Clone)]
pub enum Program {
    /// A core module, with its imports resolved once it first runs.
    Module(crate::run::preview1::PreparedModule),
    /// A component, with its imports resolved once per grant shape.
    Component(crate::run::preview2::PreparedComponent),
}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Module(_) => "Program::Module",
            Self::Component(_) => "Program::Component",
        })
    }
}

impl Program {
    /// The engine the code was loaded into, which must run it.
    pub fn engine(&self) -> &Engine {
        match self {
            Self::Module(module) => module.engine(),
            Self::Component(component) => component.engine(),
        }
    }

    pub fn kind(&self) -> ArtifactKind {
        match self {
            Self::Module(_) => ArtifactKind::Module,
            Self::Component(_) => ArtifactKind::Component,
        }
    }
}

/// Why an artifact was not loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: {source}")]
    Format {
        path: String,
        #[source]
        source: FormatError,
    },
    #[error(
        "{path}: compiled for engine {artifact}, but this engine is {engine}.\n  Recompile it for this engine: {fix}"
    )]
    FingerprintMismatch {
        path: String,
        artifact: Box<EngineFingerprint>,
        engine: Box<EngineFingerprint>,
        /// The command that makes a fitting artifact, runnable as printed.
        fix: String,
    },
    #[error("{path}: the code is a {found}, but its header says {claimed}")]
    KindMismatch {
        path: String,
        claimed: ArtifactKind,
        found: String,
    },
    #[error("{path}: wasmtime refused the artifact: {message}")]
    Wasmtime { path: String, message: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Refuses an artifact compiled for another engine, naming both
/// fingerprints and the command that fixes it: `--board NAME` when the
/// engine is a board's (its settings are the board's, not the default
/// ones a bare `--target` gives), else `--target`.
pub fn check_fingerprint(
    header: &ArtifactHeader,
    profile: &EngineProfile,
    path: &Path,
    board: Option<&str>,
) -> Result<(), LoadError> {
    let engine = EngineFingerprint::of(profile);
    if header.fingerprint == engine {
        return Ok(());
    }
    Err(LoadError::FingerprintMismatch {
        path: path.display().to_string(),
        artifact: Box::new(header.fingerprint.clone()),
        engine: Box::new(engine),
        fix: recompile_command(&header.source_name, path, profile, board),
    })
}

/// `arcella compile SOURCE -o OUT --target T` (or `--board B`), quoted for
/// a shell. OUT is `path` when it is an artifact file, else SOURCE's stem
/// with `.cwasm` (the daemon only knows "the upload").
fn recompile_command(source_name: &str, path: &Path, profile: &EngineProfile, board: Option<&str>) -> String {
    let output = if path.extension().is_some_and(|e| e == "cwasm") {
        path.display().to_string()
    } else {
        Path::new(source_name).with_extension("cwasm").display().to_string()
    };
    let engine = match board {
        Some(board) => format!("--board {}", shell_word(board)),
        None => format!("--target {}", shell_word(profile.target.resolved())),
    };
    let command = format!(
        "arcella compile {} -o {} {engine}",
        shell_word(source_name),
        shell_word(&output)
    );
    match board {
        Some(_) => command,
        None => format!(
            "{command}\n  (for a device whose arcella.toml names a board, give --board and its name instead of --target)"
        ),
    }
}

/// `word` as one shell word: as it is when that is safe, else in single
/// quotes.
pub fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./:=@,+%".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Which variant of `engines` an artifact is (`true`: fuel-metered), or
/// the mismatch error naming the plain variant's fingerprint.
/// `board` names the device's board for the recompile command.
pub fn check_variant(
    header: &ArtifactHeader,
    engines: &EngineSet,
    path: &Path,
    board: Option<&str>,
) -> Result<bool, LoadError> {
    match engines.variant_of(&header.fingerprint) {
        Some(metered) => Ok(metered),
        None => check_fingerprint(header, &engines.profile(false), path, board).map(|()| false),
    }
}

/// Refuses code whose kind (as wasmtime's own metadata says) is not the one
/// the header claims: a component must never be handed to
/// `Module::deserialize`, nor the reverse.
fn check_kind(claimed: ArtifactKind, found: Option<Precompiled>, path: &Path) -> Result<(), LoadError> {
    let found = match found {
        Some(Precompiled::Module) => ArtifactKind::Module,
        Some(Precompiled::Component) => ArtifactKind::Component,
        None => {
            return Err(LoadError::KindMismatch {
                path: path.display().to_string(),
                claimed,
                found: "something wasmtime does not recognise".into(),
            });
        }
    };
    if found == claimed {
        return Ok(());
    }
    Err(LoadError::KindMismatch {
        path: path.display().to_string(),
        claimed,
        found: found.to_string(),
    })
}

/// Decodes, verifies and deserializes an artifact held in memory.
pub fn load_bytes(engine: &Engine, profile: &EngineProfile, bytes: &[u8], path: &Path) -> Result<Program, LoadError> {
    let artifact = format::decode(bytes).map_err(|source| LoadError::Format {
        path: path.display().to_string(),
        source,
    })?;
    load_decoded(engine, profile, &artifact, path)
}

/// Deserializes an artifact [`format::decode`] has verified, for a caller
/// that had to look at its header first (so the file is decoded, and
/// hashed, once).
pub fn load_decoded(
    engine: &Engine,
    profile: &EngineProfile,
    artifact: &ArtifactRef<'_>,
    path: &Path,
) -> Result<Program, LoadError> {
    check_fingerprint(&artifact.header, profile, path, None)?;
    check_kind(
        artifact.header.kind,
        wasmtime::Engine::detect_precompiled(artifact.code),
        path,
    )?;
    let shown = || path.display().to_string();
    let refused = |e: wasmtime::Error| LoadError::Wasmtime {
        path: shown(),
        message: format!("{e:#}"),
    };
    match artifact.header.kind {
        // SAFETY: `decode` verified the whole file against its trailing
        // sha256 and the code against the digest recorded at compile time,
        // and the fingerprint says it was produced by `arcella compile`
        // (wasmtime's `precompile_*`) for an engine configured exactly like
        // this one. The bytes are copied into wasmtime-owned memory, so no
        // later change to `bytes` can reach the loaded code.
        ArtifactKind::Module => unsafe { Module::deserialize(engine, artifact.code) }
            .map(|module| Program::Module(module.into()))
            .map_err(refused),
        // SAFETY: as above, for a component.
        ArtifactKind::Component => unsafe { Component::deserialize(engine, artifact.code) }
            .map(|component| Program::Component(component.into()))
            .map_err(refused),
    }
}

/// Deserializes, where it lies, the code of an artifact file read by
/// [`MappedFile::read_aligned`] with its code (bytes `code` of the file) on
/// a page boundary and verified by [`format::decode`] (which gave
/// `header`), for an engine built with `file_code` as its code memory
/// (native code only: see [`FileCode`]).
pub fn load_read(
    file_code: &FileCode,
    engine: &Engine,
    profile: &EngineProfile,
    read: MappedFile,
    header: &ArtifactHeader,
    code: std::ops::Range<usize>,
    path: &Path,
) -> Result<Program, LoadError> {
    check_fingerprint(header, profile, path, None)?;
    let refused = |message: String| LoadError::Wasmtime {
        path: path.display().to_string(),
        message,
    };
    let bytes = read
        .bytes()
        .get(code)
        .ok_or_else(|| refused("the code lies outside the file read for it".to_owned()))?;
    check_kind(header.kind, wasmtime::Engine::detect_precompiled(bytes), path)?;
    // wasmtime asserts that its text starts a page: refuse here, not abort.
    if !(bytes.as_ptr() as usize).is_multiple_of(crate::sys::code_map::page_size()) {
        return Err(refused("the code was not read onto a page boundary".to_owned()));
    }
    let code = std::ptr::NonNull::from(bytes);
    // SAFETY: `decode` verified the code against the digest recorded at
    // compile time and the header against the trailer, and the fingerprint
    // says it was produced by `arcella compile` (wasmtime's `precompile_*`)
    // for an engine configured exactly like this one, which was built with
    // `file_code`. `code` lies in `read` and starts a page (checked above),
    // and `file_code` keeps `read` (moving it leaves the memory where it
    // is) until wasmtime is done with the code.
    unsafe { file_code.load_mapped(engine, read, code, header.kind) }.map_err(|e| refused(e.to_string()))
}

/// Deserializes the code file of a stored artifact by mmap.
///
/// The caller (the store) has checked the fingerprint and that the file
/// has the size its sealed header records; the file was hashed when it
/// entered the store (docs/security.md, "The artifact store").
pub(crate) fn load_verified_file(
    engine: &Engine,
    header: &ArtifactHeader,
    code_path: &Path,
) -> Result<Program, LoadError> {
    let refused = |e: wasmtime::Error| LoadError::Wasmtime {
        path: code_path.display().to_string(),
        message: format!("{e:#}"),
    };
    let detected = wasmtime::Engine::detect_precompiled_file(code_path).map_err(refused)?;
    check_kind(header.kind, detected, code_path)?;
    match header.kind {
        // SAFETY: the store hashed this file against the code digest of its
        // sealed header when it was stored, and the header's fingerprint
        // equals this engine's. The store directory is private to the
        // daemon's user and written only by Arcella, atomically, never in
        // place; whoever could change a code file there could also rewrite
        // its header (docs/security.md), so a re-hash here would add cost,
        // not trust. The size and wasmtime's own ELF checks catch a
        // truncated or foreign file.
        ArtifactKind::Module => unsafe { Module::deserialize_file(engine, code_path) }
            .map(|module| Program::Module(module.into()))
            .map_err(refused),
        // SAFETY: as above, for a component.
        ArtifactKind::Component => unsafe { Component::deserialize_file(engine, code_path) }
            .map(|component| Program::Component(component.into()))
            .map_err(refused),
    }
}

/// Compiles plain `.wasm`/`.wat` in memory (builds with the compiler only).
#[cfg(feature = "compiler")]
pub fn compile_in_memory(engine: &Engine, bytes: &[u8], name: &str) -> Result<Program, super::compile::CompileError> {
    use super::compile::{CompileError, to_binary};
    let (binary, kind) = to_binary(bytes, name)?;
    let invalid = |e: wasmtime::Error| CompileError::Invalid {
        name: name.to_owned(),
        kind,
        message: format!("{e:#}"),
    };
    match kind {
        ArtifactKind::Module => Module::new(engine, &binary)
            .map(|module| Program::Module(module.into()))
            .map_err(invalid),
        ArtifactKind::Component => Component::new(engine, &binary)
            .map(|component| Program::Component(component.into()))
            .map_err(invalid),
    }
}
