//! The engine fingerprint: what an artifact was compiled for.
//!
//! `Engine::precompile_compatibility_hash` hashes the compiler's triple and
//! flags, the tunables, the wasm features and the wasmtime version. It only
//! exists where Cranelift is built in, and a device has no Cranelift, so the
//! device could never compute it. Arcella's fingerprint hashes the inputs
//! those values are made from instead, which both sides have:
//!
//! * the wasmtime version (pulley bytecode and the artifact layout change
//!   between versions);
//! * the resolved target (`native` becomes the host triple);
//! * every *artifact* field of the [`EngineProfile`], which [`build_config`]
//!   turns into tunables and features the same way on both sides.
//!
//! What it cannot see, the CPU features a native artifact assumes, wasmtime
//! checks itself when the artifact is deserialized.
//!
//! [`build_config`]: crate::engine::build_config

use crate::engine::EngineProfile;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// The wasmtime version Arcella is built against (pinned in Cargo.toml).
pub const WASMTIME_VERSION: &str = "48.0.8";

/// Bumped whenever [`build_config`](crate::engine::build_config) changes what
/// it sets, so artifacts from an older Arcella are refused, not misread.
const CONFIG_SCHEME: u32 = 1;

/// What an artifact was compiled for; two artifacts with equal fingerprints
/// load in the same engines.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EngineFingerprint {
    pub wasmtime: String,
    pub target: String,
    /// sha256 of the artifact-relevant engine settings.
    pub settings: [u8; 32],
}

impl EngineFingerprint {
    /// The fingerprint of an engine built from `profile`.
    pub fn of(profile: &EngineProfile) -> Self {
        let target = profile.target.resolved().to_owned();
        let mut hasher = Sha256::new();
        // Fixed-width little-endian fields: the same bytes on a 32-bit device
        // and a 64-bit build host.
        hasher.update(CONFIG_SCHEME.to_le_bytes());
        hasher.update((target.len() as u64).to_le_bytes());
        hasher.update(target.as_bytes());
        hasher.update([u8::from(profile.consume_fuel), u8::from(profile.epoch_interruption)]);
        // The resolved layout: a profile that leaves a field to the
        // target's default and one that spells the default out agree.
        let layout = profile.memory_layout();
        hasher.update(layout.reservation.to_le_bytes());
        hasher.update(layout.guard_size.to_le_bytes());
        hasher.update(layout.reservation_for_growth.to_le_bytes());
        Self {
            wasmtime: WASMTIME_VERSION.to_owned(),
            target,
            settings: hasher.finalize().into(),
        }
    }

    /// The built-in profile (any fuel and epoch variant) an artifact with
    /// this fingerprint was compiled with, if it was one of them and its
    /// target runs here: what `arcella run` and `inspect` load it with.
    pub fn standalone_profile(&self) -> Option<EngineProfile> {
        let target = crate::engine::ArtifactTarget::from_resolved(&self.target);
        if !target.runs_here() {
            return None;
        }
        let base = EngineProfile::default().with_target(target);
        [(false, true), (true, true), (false, false), (true, false)]
            .into_iter()
            .map(|(fuel, epoch)| base.clone().with_fuel(fuel).with_epoch(epoch))
            .find(|profile| Self::of(profile) == *self)
    }

    /// The short form of the settings hash shown to people.
    pub fn settings_short(&self) -> String {
        crate::digest::hex(&self.settings[..8])
    }
}

impl fmt::Display for EngineFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "wasmtime-{}/{}/{}",
            self.wasmtime,
            self.target,
            self.settings_short()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ArtifactTarget;

    #[test]
    fn target_and_artifact_settings_change_the_fingerprint() {
        let base = EngineProfile::default();
        let fp = EngineFingerprint::of(&base);
        assert_eq!(fp, EngineFingerprint::of(&base.clone()));
        let pulley = EngineFingerprint::of(&base.clone().with_target(ArtifactTarget::Pulley64));
        assert_ne!(fp, pulley);
        assert_ne!(fp, EngineFingerprint::of(&base.clone().with_fuel(true)));
        assert_ne!(fp, EngineFingerprint::of(&base.clone().with_epoch(false)));
        let smaller = EngineProfile {
            memory_reservation: Some(1 << 20),
            ..base.clone()
        };
        assert_ne!(fp, EngineFingerprint::of(&smaller));
        let spelled_out = EngineProfile {
            memory_reservation: Some(base.memory_layout().reservation),
            memory_guard_size: Some(base.memory_layout().guard_size),
            ..base.clone()
        };
        assert_eq!(
            fp,
            EngineFingerprint::of(&spelled_out),
            "defaults written out change nothing"
        );
    }

    #[test]
    fn runtime_only_settings_do_not() {
        let base = EngineProfile::default();
        let deeper = EngineProfile {
            max_wasm_stack: 256 << 10,
            ..base.clone()
        };
        assert_eq!(EngineFingerprint::of(&base), EngineFingerprint::of(&deeper));
    }

    #[test]
    fn native_equals_the_explicit_host_triple() {
        let native = EngineProfile::default();
        let explicit = native
            .clone()
            .with_target(ArtifactTarget::Triple(crate::engine::HOST_TRIPLE.into()));
        assert_eq!(EngineFingerprint::of(&native), EngineFingerprint::of(&explicit));
    }

    #[test]
    fn display_names_version_target_and_settings() {
        let fp = EngineFingerprint::of(&EngineProfile::default().with_target(ArtifactTarget::Pulley32));
        let shown = fp.to_string();
        assert!(shown.starts_with("wasmtime-48.0.8/pulley32/"), "{shown}");
        assert_eq!(shown.len(), "wasmtime-48.0.8/pulley32/".len() + 16);
    }
}
