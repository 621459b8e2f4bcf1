//! Fleet messages carried over MQTT (docs/mqtt.md): signed commands,
//! signed desired-state documents the operator publishes, artifact
//! chunks, and the progress a device reports while it converges.
//! Postcard, like the rest of the protocol.

use super::{Request, RequestId};
use serde::{Deserialize, Serialize};

/// An Ed25519 signature with the signer's public key (see `signing`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// The signer's public key.
    pub key: [u8; 32],
    /// 64 bytes.
    pub signature: Vec<u8>,
}

/// An artifact's signature: over its sha256 (`signing::sign`).
pub type ArtifactSignature = Signature;

/// A request over MQTT: the socket's request, and what authorizes it.
/// `id` comes first so that a busy device can answer an undecoded one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteCommand {
    pub id: RequestId,
    pub request: Request,
    /// Required for operate and change requests (`Request::access`).
    pub auth: Option<CommandAuth>,
    /// For `Install`/`Update`: the signature of the uploaded artifact.
    pub artifact_signature: Option<ArtifactSignature>,
}

/// An operator's signature over one command (`signing::request`), bound
/// to the device and to a counter the device has never seen from that key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandAuth {
    /// Strictly greater than every counter this device accepted from the
    /// key (the operator tools use the time in microseconds).
    pub counter: u64,
    pub signature: Signature,
}

/// Who a desired-state document is for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum DocumentTarget {
    Device(String),
    Group(String),
}

impl std::fmt::Display for DocumentTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DocumentTarget::Device(id) => write!(f, "device {id}"),
            DocumentTarget::Group(name) => write!(f, "group {name}"),
        }
    }
}

/// What a device (or every device of a group) should run. Published
/// inside a [`SignedDocument`], retained on `…/desired`; `version` only
/// ever grows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesiredDocument {
    pub target: DocumentTarget,
    pub version: u64,
    pub modules: Vec<DesiredModule>,
}

/// A desired-state document as published: its postcard bytes and an
/// operator's signature over exactly those bytes (`signing::document`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedDocument {
    pub body: Vec<u8>,
    pub signature: Signature,
}

/// One module of a desired-state document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesiredModule {
    pub id: String,
    /// The artifact, when every targeted device runs one engine; with
    /// `variants`, the first of them, or (when it is none of them) the one
    /// for every device no variant names (the engine a module was first
    /// deployed for, after `fleet rebuild` added variants for new ones).
    pub artifact: ArtifactRef,
    /// One artifact per engine fingerprint, for a target whose devices run
    /// different engines (mixed boards; `fleet deploy` of a `.wasm`
    /// compiles one per engine the devices report). Empty: `artifact` is
    /// for every device.
    pub variants: Vec<ArtifactVariant>,
    /// `component.toml` text (required for preview-1 modules).
    pub component_toml: Option<String>,
    /// `deployment.toml` text.
    pub deployment_toml: String,
    /// Run it (`true`) or keep it installed and stopped.
    pub run: bool,
    /// The module's `.wasm` on the broker, when it was deployed from one:
    /// what `fleet rebuild` compiles again for engines that appear later
    /// (an Arcella upgrade, a board changed). Devices never fetch it.
    pub source: Option<ArtifactRef>,
}

impl DesiredModule {
    /// The artifact for a device whose engine fingerprints (plain and
    /// fuel-metered) are `engines`: the variant compiled for one of them,
    /// else `artifact` unless it is one of the variants (`None`: nothing
    /// the entry has fits).
    pub fn artifact_for(&self, engines: &[String]) -> Option<&ArtifactRef> {
        if let Some(v) = self.variants.iter().find(|v| engines.contains(&v.fingerprint)) {
            return Some(&v.artifact);
        }
        let is_variant = self.variants.iter().any(|v| v.artifact.sha256 == self.artifact.sha256);
        (!is_variant).then_some(&self.artifact)
    }

    /// Every artifact the entry refers to (`artifact` and the variants').
    pub fn artifacts(&self) -> impl Iterator<Item = &ArtifactRef> {
        std::iter::once(&self.artifact).chain(self.variants.iter().map(|v| &v.artifact))
    }
}

/// An artifact compiled for one engine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactVariant {
    /// The engine fingerprint it was compiled for, as shown
    /// (`wasmtime-48.0.8/<target>/<hash>`).
    pub fingerprint: String,
    pub artifact: ArtifactRef,
}

/// An artifact published in chunks on `arcella/v1/artifacts/<sha256>/<i>`,
/// described (without signature) on `arcella/v1/artifacts/<sha256>/meta`.
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

/// One chunk of an artifact (retained, QoS 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactChunk {
    pub sha256: [u8; 32],
    pub index: u32,
    pub data: Vec<u8>,
}

/// The documents a device applied, as they were signed (retained on
/// `…/applied`), so an operator can rebuild a target's desired state
/// from the devices when the broker lost its retained documents.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedDocuments {
    pub device: Option<SignedDocument>,
    pub group: Option<SignedDocument>,
}

/// Where a device is with its desired state. Retained on
/// `…/convergence`, republished at every step.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Convergence {
    /// The fleet group this device belongs to, if any.
    pub group: Option<String>,
    /// The documents taken (the group's and the device's): version and
    /// sha256 of the signed body.
    pub group_document: Option<DocumentId>,
    pub device_document: Option<DocumentId>,
    pub phase: Phase,
    pub modules: Vec<ModuleProgress>,
    /// The last document refused, and why.
    pub refused: Option<RefusedDocument>,
}

impl Convergence {
    /// The version taken from `target`'s kind of source.
    pub fn version_for(&self, target: &DocumentTarget) -> Option<u64> {
        match target {
            DocumentTarget::Device(_) => self.device_document.map(|d| d.version),
            DocumentTarget::Group(_) => self.group_document.map(|d| d.version),
        }
    }
}

/// A document's version and the sha256 of its signed body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentId {
    pub version: u64,
    pub sha256: [u8; 32],
}

/// The overall state of a convergence.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    /// No desired state received yet.
    #[default]
    Idle,
    /// Some module is not at a verdict yet (fetching, installing, in its
    /// health window).
    Applying,
    /// Every module is healthy (or stopped, or removed) as desired.
    Converged,
    /// Every module has a verdict, and at least one is not healthy:
    /// failed, rolled back or drifted.
    Failed,
}

/// One module's progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleProgress {
    pub id: String,
    pub step: Step,
}

/// Where one module is. `Healthy`, `Stopped` and `Removed` are success;
/// `RolledBack`, `Failed` and `Drifted` are verdicts against it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Step {
    Pending,
    Fetching {
        received: u64,
        total: u64,
    },
    Installing,
    /// Installed and running; healthy if it still runs at `until` (Unix
    /// seconds).
    HealthWindow {
        until: u64,
    },
    Healthy,
    /// Installed and stopped, as desired.
    Stopped,
    Removed,
    /// The new version failed its health window; the previous one runs.
    RolledBack {
        reason: String,
    },
    Failed {
        reason: String,
    },
    /// It was as desired, then changed without a document: removed,
    /// stopped or replaced by hand, or crash-looping after its window.
    Drifted {
        reason: String,
    },
    /// Installed, but its artifact (or every artifact the document has)
    /// was compiled for another engine than the device's `engine` now (an
    /// Arcella upgrade, a board or `[engine]` change): nothing of it runs
    /// until the document carries an artifact for that engine
    /// (`fleet rebuild`).
    NeedsArtifact {
        engine: String,
    },
}

impl Step {
    /// Whether the module is where the document wants it.
    pub fn is_success(&self) -> bool {
        matches!(self, Step::Healthy | Step::Stopped | Step::Removed)
    }

    /// Whether the step is a verdict (success or not), not work going on.
    pub fn is_verdict(&self) -> bool {
        !matches!(
            self,
            Step::Pending | Step::Fetching { .. } | Step::Installing | Step::HealthWindow { .. }
        )
    }
}

/// Why a desired-state document was not taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusedDocument {
    /// `device` or `group <name>`.
    pub source: String,
    /// The version it claimed (0 if unreadable).
    pub version: u64,
    pub reason: Refusal,
}

/// The reasons a document is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Refusal {
    /// Older than the version already taken from this source.
    Stale { applied: u64 },
    /// The version already taken, with other content.
    Conflict,
    /// Version 0, or more than `MAX_VERSION_JUMP` past the one taken.
    BadVersion { applied: u64 },
    /// Not for this device (another device or group).
    WrongTarget { target: String },
    /// Unsigned, untrusted or forged: the signing error.
    Signature(String),
    /// Not a document at all.
    Unreadable(String),
}

/// How far past the version taken a new document may go: a bound that no
/// sequence of deploys reaches, and that keeps a signed mistake (or a
/// leaked key's 2^64 − 1) from freezing a device for good.
pub const MAX_VERSION_JUMP: u64 = 1 << 20;

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Stale { applied } => write!(f, "stale: older than version {applied}, already taken"),
            Refusal::Conflict => f.write_str("conflict: the version already taken, with other content"),
            Refusal::BadVersion { applied } => write!(
                f,
                "bad version: must be 1 or more, and at most {MAX_VERSION_JUMP} past version {applied}, already taken"
            ),
            Refusal::WrongTarget { target } => write!(f, "addressed to {target}, not this device"),
            Refusal::Signature(e) => write!(f, "signature: {e}"),
            Refusal::Unreadable(e) => write!(f, "unreadable: {e}"),
        }
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::Pending => f.write_str("pending"),
            Step::Fetching { received, total } => write!(f, "fetching {received}/{total} bytes"),
            Step::Installing => f.write_str("installing"),
            Step::HealthWindow { .. } => f.write_str("in its health window"),
            Step::Healthy => f.write_str("healthy"),
            Step::Stopped => f.write_str("stopped"),
            Step::Removed => f.write_str("removed"),
            Step::RolledBack { reason } => write!(f, "rolled back: {reason}"),
            Step::Failed { reason } => write!(f, "failed: {reason}"),
            Step::Drifted { reason } => write!(f, "drifted: {reason}"),
            Step::NeedsArtifact { engine } => write!(
                f,
                "needs an artifact for this device's engine {engine}, which the document has none for: \
                 `arcella fleet rebuild` compiles the module's .wasm for it on a build host that has the \
                 device's board"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn artifact(byte: u8) -> ArtifactRef {
        ArtifactRef {
            sha256: [byte; 32],
            len: 1,
            chunk_len: 1024,
            signature: None,
        }
    }

    fn entry(artifact: ArtifactRef, variants: &[(&str, u8)]) -> DesiredModule {
        DesiredModule {
            id: "m".into(),
            artifact,
            variants: variants
                .iter()
                .map(|(fingerprint, byte)| ArtifactVariant {
                    fingerprint: (*fingerprint).into(),
                    artifact: self::tests::artifact(*byte),
                })
                .collect(),
            component_toml: None,
            deployment_toml: String::new(),
            run: true,
            source: None,
        }
    }

    #[test]
    fn a_device_gets_its_engines_variant_else_the_default_artifact_if_there_is_one() {
        let engines = |e: &str| vec![e.to_owned(), format!("{e}-fuel")];
        // One artifact for all.
        let single = entry(artifact(1), &[]);
        assert_eq!(single.artifact_for(&engines("a")).unwrap().sha256, [1; 32]);
        // Mixed boards: the first variant doubles as `artifact`; a device
        // of another engine gets nothing (it reports needs_artifact).
        let mixed = entry(artifact(2), &[("a", 2), ("b", 3)]);
        assert_eq!(mixed.artifact_for(&engines("b")).unwrap().sha256, [3; 32]);
        assert!(mixed.artifact_for(&engines("c")).is_none());
        // Rebuilt for a new engine: the first artifact stays the default.
        let rebuilt = entry(artifact(1), &[("new", 4)]);
        assert_eq!(rebuilt.artifact_for(&engines("new")).unwrap().sha256, [4; 32]);
        assert_eq!(rebuilt.artifact_for(&engines("old")).unwrap().sha256, [1; 32]);
        // A fuel-metered device matches on its metered fingerprint.
        let metered = entry(artifact(2), &[("a-fuel", 2)]);
        assert_eq!(metered.artifact_for(&engines("a")).unwrap().sha256, [2; 32]);
    }
}
