//! What a file is: recognised from its first bytes, never from its name.

use serde::{Deserialize, Serialize};
use std::fmt;

/// What an artifact holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ArtifactKind {
    /// A core WebAssembly module (WASI preview 1).
    Module,
    /// A component (WASI preview 2, WIT interfaces).
    Component,
}

impl fmt::Display for ArtifactKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Module => "core module",
            Self::Component => "component",
        })
    }
}

/// What an input file turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    /// A `.wasm` binary of this kind.
    Wasm(ArtifactKind),
    /// WebAssembly text (`.wat`).
    Wat,
    /// An Arcella artifact (`.cwasm` with Arcella's header).
    Artifact,
    /// A bare wasmtime precompiled file, without Arcella's header and digests.
    BareWasmtime,
    /// Nothing Arcella reads.
    Unknown,
}

const WASM_MAGIC: [u8; 4] = *b"\0asm";
/// Core modules: version 1, layer 0.
const MODULE_VERSION: [u8; 4] = [0x01, 0x00, 0x00, 0x00];
/// Components: version 0x0d, layer 1.
const COMPONENT_VERSION: [u8; 4] = [0x0d, 0x00, 0x01, 0x00];
const ELF_MAGIC: [u8; 4] = *b"\x7fELF";

impl InputKind {
    /// Classifies `bytes` by their leading bytes.
    pub fn of(bytes: &[u8]) -> Self {
        if bytes.starts_with(&super::format::MAGIC) {
            return Self::Artifact;
        }
        if bytes.len() >= 8 && bytes[..4] == WASM_MAGIC {
            let version = &bytes[4..8];
            return if version == MODULE_VERSION {
                Self::Wasm(ArtifactKind::Module)
            } else if version == COMPONENT_VERSION {
                Self::Wasm(ArtifactKind::Component)
            } else {
                Self::Unknown
            };
        }
        if bytes.starts_with(&ELF_MAGIC) && wasmtime::Engine::detect_precompiled(bytes).is_some() {
            return Self::BareWasmtime;
        }
        if looks_like_wat(bytes) {
            return Self::Wat;
        }
        Self::Unknown
    }

    /// A phrase for error messages: "… is <describe>".
    pub fn describe(self) -> &'static str {
        match self {
            Self::Wasm(ArtifactKind::Module) => "a WebAssembly core module",
            Self::Wasm(ArtifactKind::Component) => "a WebAssembly component",
            Self::Wat => "WebAssembly text",
            Self::Artifact => "an Arcella artifact",
            Self::BareWasmtime => {
                "a bare wasmtime .cwasm without Arcella's header (compile with `arcella compile` instead)"
            }
            Self::Unknown => "neither WebAssembly nor an Arcella artifact",
        }
    }
}

/// WAT starts, after whitespace and comments, with `(module` or `(component`.
fn looks_like_wat(bytes: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(&bytes[..bytes.len().min(4096)]) else {
        return false;
    };
    let mut rest = text;
    loop {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix(";;") {
            rest = after.split_once('\n').map_or("", |(_, tail)| tail);
        } else if let Some(after) = rest.strip_prefix("(;") {
            rest = after.split_once(";)").map_or("", |(_, tail)| tail);
        } else {
            break;
        }
    }
    rest.starts_with("(module") || rest.starts_with("(component")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_each_kind() {
        assert_eq!(InputKind::of(b"\0asm\x01\0\0\0"), InputKind::Wasm(ArtifactKind::Module));
        assert_eq!(
            InputKind::of(b"\0asm\x0d\0\x01\0"),
            InputKind::Wasm(ArtifactKind::Component)
        );
        assert_eq!(InputKind::of(b";; hi\n(module)"), InputKind::Wat);
        assert_eq!(InputKind::of(b"(; c ;) (component)"), InputKind::Wat);
        assert_eq!(InputKind::of(b"ARCELLA\0rest"), InputKind::Artifact);
        assert_eq!(InputKind::of(b""), InputKind::Unknown);
        assert_eq!(InputKind::of(b"\0asm"), InputKind::Unknown);
        assert_eq!(InputKind::of(b"\x7fELF\x02\x01\x01"), InputKind::Unknown);
        assert_eq!(InputKind::of(&[0xff; 64]), InputKind::Unknown);
    }
}
