//! Fleet messages carried over MQTT (docs/mqtt.md): desired-state
//! documents the operator publishes, artifact chunks, and the progress a
//! device reports while it converges. Postcard, like the rest of the
//! protocol.

use serde::{Deserialize, Serialize};

/// What a device (or every device of a group) should run. Retained on
/// `…/desired`; `version` only ever grows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesiredDocument {
    pub version: u64,
    pub modules: Vec<DesiredModule>,
}

/// One module of a desired-state document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesiredModule {
    pub id: String,
    pub artifact: ArtifactRef,
    /// `component.toml` text (required for preview-1 modules).
    pub component_toml: Option<String>,
    /// `deployment.toml` text.
    pub deployment_toml: String,
    /// Run it (`true`) or keep it installed and stopped.
    pub run: bool,
}

/// An artifact published in chunks on `arcella/v1/artifacts/<sha256>/<i>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactRef {
    pub sha256: [u8; 32],
    pub len: u64,
    pub chunk_len: u32,
    pub signature: Option<ArtifactSignature>,
}

impl ArtifactRef {
    /// How many chunks the artifact is cut into.
    pub fn chunks(&self) -> u64 {
        self.len.div_ceil(u64::from(self.chunk_len.max(1)))
    }
}

/// An Ed25519 signature over an artifact's sha256 (see `signing`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactSignature {
    /// The signer's public key.
    pub key: [u8; 32],
    /// 64 bytes.
    pub signature: Vec<u8>,
}

/// One chunk of an artifact (retained, QoS 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactChunk {
    pub sha256: [u8; 32],
    pub index: u32,
    pub data: Vec<u8>,
}

/// Where a device is with its desired state. Retained on
/// `…/desired/status`, republished at every step.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Convergence {
    /// The fleet group this device belongs to, if any.
    pub group: Option<String>,
    /// Versions being (or last) applied: the group's and the device's.
    pub group_version: Option<u64>,
    pub device_version: Option<u64>,
    pub phase: Phase,
    pub modules: Vec<ModuleProgress>,
    /// The last document ignored because it was older than one applied.
    pub stale: Option<StaleDocument>,
}

/// The overall state of a convergence.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    /// No desired state received yet.
    #[default]
    Idle,
    Applying,
    /// Every module is as desired.
    Converged,
    /// At least one module could not be brought to its desired state.
    Failed,
}

/// One module's progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleProgress {
    pub id: String,
    pub step: Step,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Step {
    Waiting,
    Fetching { received: u64, total: u64 },
    Installing,
    Running,
    Stopped,
    Removed,
    Failed { reason: String },
}

/// A desired-state document older than what the device already took.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaleDocument {
    /// `device` or `group <name>`.
    pub source: String,
    pub version: u64,
    pub applied: u64,
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::Waiting => f.write_str("waiting"),
            Step::Fetching { received, total } => write!(f, "fetching {received}/{total} bytes"),
            Step::Installing => f.write_str("installing"),
            Step::Running => f.write_str("running"),
            Step::Stopped => f.write_str("stopped"),
            Step::Removed => f.write_str("removed"),
            Step::Failed { reason } => write!(f, "failed: {reason}"),
        }
    }
}
