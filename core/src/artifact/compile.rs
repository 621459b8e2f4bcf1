//! `.wasm` (or `.wat`) → artifact, with Cranelift. Build hosts only.

use super::format::{self, ArtifactHeader};
use super::kind::{ArtifactKind, InputKind};
use crate::engine::{EngineError, EngineProfile, new_engine};
use crate::fingerprint::EngineFingerprint;
use std::borrow::Cow;

/// Why a source could not be compiled.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    #[error("{name}: the file is empty")]
    Empty { name: String },
    #[error("{name}: {} is already compiled; compile the .wasm it came from", .kind.describe())]
    AlreadyCompiled { name: String, kind: InputKind },
    #[error("{name}: cannot compile: the file is {}", .kind.describe())]
    NotWasm { name: String, kind: InputKind },
    #[error("{name}: invalid WebAssembly text: {message}")]
    BadText { name: String, message: String },
    #[error("{name}: not a valid WebAssembly {kind}: {message}")]
    Invalid {
        name: String,
        kind: ArtifactKind,
        message: String,
    },
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// A compiled artifact, owned.
#[derive(Debug)]
pub struct Compiled {
    pub header: ArtifactHeader,
    pub code: Vec<u8>,
    /// A component's top-level imports (empty for a core module), so the
    /// build host can say what a device would refuse.
    pub imports: Vec<String>,
}

impl Compiled {
    /// The artifact file image.
    pub fn encode(&self) -> Vec<u8> {
        format::encode(&self.header, &self.code)
    }
}

/// Converts WAT to binary if needed and says what the binary is.
pub fn to_binary<'a>(source: &'a [u8], name: &str) -> Result<(Cow<'a, [u8]>, ArtifactKind), CompileError> {
    if source.is_empty() {
        return Err(CompileError::Empty { name: name.to_owned() });
    }
    let binary: Cow<'a, [u8]> = match InputKind::of(source) {
        InputKind::Wat => Cow::Owned(
            wat::parse_bytes(source)
                .map_err(|e| CompileError::BadText {
                    name: name.to_owned(),
                    message: e.to_string(),
                })?
                .into_owned(),
        ),
        _ => Cow::Borrowed(source),
    };
    match InputKind::of(&binary) {
        InputKind::Wasm(kind) => Ok((binary, kind)),
        kind @ (InputKind::Artifact | InputKind::BareWasmtime) => Err(CompileError::AlreadyCompiled {
            name: name.to_owned(),
            kind,
        }),
        kind => Err(CompileError::NotWasm {
            name: name.to_owned(),
            kind,
        }),
    }
}

/// Compiles `source` (named `name` in messages and in the artifact) for the
/// engine `profile` describes. Modules and components are told apart by
/// their bytes.
pub fn compile(profile: &EngineProfile, source: &[u8], name: &str) -> Result<Compiled, CompileError> {
    let (binary, kind) = to_binary(source, name)?;
    let engine = new_engine(profile)?;
    let code = match kind {
        ArtifactKind::Module => engine.precompile_module(&binary),
        ArtifactKind::Component => engine.precompile_component(&binary),
    }
    .map_err(|e| CompileError::Invalid {
        name: name.to_owned(),
        kind,
        message: format!("{e:#}"),
    })?;
    let header = ArtifactHeader::describe(kind, EngineFingerprint::of(profile), &binary, name, &code);
    let imports = match kind {
        ArtifactKind::Module => Vec::new(),
        ArtifactKind::Component => component_imports(&binary),
    };
    Ok(Compiled { header, code, imports })
}

/// The names a component imports at its top level (nested components'
/// and modules' imports are satisfied inside it). The binary has been
/// validated by the compile, so a parse error just ends the list.
fn component_imports(binary: &[u8]) -> Vec<String> {
    use wasmparser::{Parser, Payload};
    let mut imports = Vec::new();
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(binary) {
        match payload {
            Ok(Payload::ModuleSection { .. } | Payload::ComponentSection { .. }) => depth += 1,
            Ok(Payload::End(_)) => depth = depth.saturating_sub(1),
            Ok(Payload::ComponentImportSection(section)) if depth == 0 => {
                for import in section.into_iter().flatten() {
                    imports.push(import.name.name.to_owned());
                }
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    imports
}
