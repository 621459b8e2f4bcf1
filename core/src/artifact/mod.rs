//! Artifacts: compiled once on a build host, verified and loaded on a device.

#[cfg(feature = "compiler")]
pub mod compile;
pub mod format;
pub mod group_links;
pub mod kind;
pub mod load;
pub mod store;

pub use format::{ArtifactHeader, ArtifactRef, FormatError};
pub use kind::{ArtifactKind, InputKind};
pub use load::{LoadError, Program};
pub use store::{ArtifactStore, StoreError};
