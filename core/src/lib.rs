//! `arcella-core`: the engine, artifacts, and the guest runner.
//!
//! See `docs/ARCHITECTURE.md` for the map of this crate.

pub mod artifact;
pub mod board;
pub mod broker_url;
pub mod client;
pub mod daemon;
pub mod digest;
pub mod engine;
pub mod fingerprint;
pub mod host;
pub mod manifest;
pub mod offload;
pub mod protocol;
pub mod run;
pub mod signing;
pub mod sys;
pub mod units;

pub use engine::{ArtifactTarget, EngineProfile};
pub use fingerprint::EngineFingerprint;
pub use wasmtime;
