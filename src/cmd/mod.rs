//! One module per verb.

pub mod audit;
#[cfg(feature = "compiler")]
pub mod compile;
pub mod config;
pub mod daemon;
pub mod docs;
#[cfg(feature = "mqtt")]
pub mod fleet;
#[cfg(all(feature = "compiler", feature = "mqtt"))]
pub mod fleet_build;
#[cfg(feature = "mqtt")]
pub mod fleet_rebuild;
#[cfg(feature = "mqtt")]
pub mod fleet_rollout;
pub mod inspect;
pub mod json;
pub mod keys;
pub mod kv;
pub mod level;
pub mod manage;
#[cfg(feature = "compiler")]
pub mod new;
pub mod overlap;
pub mod render;
pub mod run;
pub mod wit;

use crate::exit::Failure;

/// What a build without the `mqtt` feature says when asked for MQTT.
#[cfg(not(feature = "mqtt"))]
pub const WITHOUT_MQTT: &str = "this arcella is built without MQTT (cargo feature `mqtt`)";
use std::path::Path;

/// How a file is named in messages and progress lines: its file name, or
/// the whole path if it has none.
pub fn file_label(path: &Path) -> String {
    path.file_name()
        .map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
}

/// Errors of the offline verbs; each names the file it is about.
#[derive(Debug, thiserror::Error)]
pub enum CmdError {
    #[error("{path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[cfg(feature = "compiler")]
    #[error("{path}: cannot write: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[cfg(feature = "compiler")]
    #[error(transparent)]
    Board(#[from] arcella_core::board::BoardError),
    #[error(transparent)]
    Engine(#[from] arcella_core::engine::EngineError),
    #[cfg(feature = "compiler")]
    #[error(transparent)]
    Compile(#[from] arcella_core::artifact::compile::CompileError),
    #[error(transparent)]
    Load(#[from] arcella_core::artifact::LoadError),
    /// The artifact lacks instrumentation the run asks for (fuel, epoch).
    #[error("{0}")]
    Instrumentation(String),
    #[error("{path}: {source}")]
    Format {
        path: String,
        #[source]
        source: arcella_core::artifact::FormatError,
    },
}

impl From<CmdError> for Failure {
    fn from(err: CmdError) -> Self {
        let kind = match &err {
            CmdError::Read { .. } => "io",
            #[cfg(feature = "compiler")]
            CmdError::Write { .. } => "io",
            #[cfg(feature = "compiler")]
            CmdError::Board(_) | CmdError::Compile(_) => "invalid_input",
            CmdError::Engine(_) | CmdError::Instrumentation(_) => "invalid_input",
            CmdError::Load(_) | CmdError::Format { .. } => "invalid_artifact",
        };
        Failure::new(kind, err)
    }
}

/// Reads a whole input file, with an error that says what to do.
pub fn read_input(path: &Path) -> Result<Vec<u8>, CmdError> {
    std::fs::read(path).map_err(|source| CmdError::Read {
        path: path.display().to_string(),
        source,
    })
}
