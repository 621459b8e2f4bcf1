//! The engines of one process: one per instrumentation variant an artifact
//! may carry, so that a module pays only for what it uses.
//!
//! Fuel metering is compiled into the code (and must match the engine that
//! loads it), and costs about a quarter of a guest's speed. An artifact is
//! compiled with it only when its module has a fuel limit (`arcella compile
//! --fuel`); a device accepts both variants and loads each into the engine
//! made for it. Both engines share every other setting, so both variants'
//! fingerprints follow from the one profile a board or arcella.toml gives.
//!
//! Epoch checks are not a variant here: the daemon needs them in every
//! module it runs (fair yielding between in-process modules, timeouts,
//! stopping a guest that ignores the shutdown call), so a profile that has
//! them requires them.

use super::file_code::FileCode;
use super::{EngineError, EngineProfile, new_engine_with};
use crate::fingerprint::EngineFingerprint;
use std::sync::{Arc, OnceLock};
use wasmtime::Engine;

/// An engine per fuel variant; cheap to clone. The metered engine is made
/// the first time a metered artifact is loaded.
#[derive(Clone)]
pub struct EngineSet {
    inner: Arc<Inner>,
}

struct Inner {
    /// The profile without fuel metering.
    plain_profile: EngineProfile,
    plain: Engine,
    metered: OnceLock<Engine>,
    /// Set when loaded native code runs from mappings of its files.
    file_code: Option<Arc<FileCode>>,
}

impl std::fmt::Debug for EngineSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineSet")
            .field("profile", &self.inner.plain_profile)
            .field("metered_built", &self.inner.metered.get().is_some())
            .finish()
    }
}

impl EngineSet {
    /// Builds the plain engine of `profile` (its `consume_fuel` is ignored:
    /// both variants are accepted).
    pub fn new(profile: &EngineProfile) -> Result<Self, EngineError> {
        Self::build(profile, None)
    }

    /// As [`EngineSet::new`], for a process that loads code from file
    /// descriptors and shares it with other processes: native components
    /// run from mappings of their code files ([`super::file_code`]).
    pub fn sharing_code_files(profile: &EngineProfile) -> Result<Self, EngineError> {
        Self::build(profile, Some(FileCode::new()))
    }

    fn build(profile: &EngineProfile, file_code: Option<Arc<FileCode>>) -> Result<Self, EngineError> {
        let plain_profile = profile.clone().with_fuel(false);
        let plain = new_engine_with(&plain_profile, file_code.clone())?;
        Ok(Self {
            inner: Arc::new(Inner {
                plain_profile,
                plain,
                metered: OnceLock::new(),
                file_code,
            }),
        })
    }

    /// The mappings' keeper, if this set loads native code from them (not
    /// for pulley, whose bytecode wasmtime never publishes).
    pub fn file_code(&self) -> Option<&FileCode> {
        let native = !self.inner.plain.is_pulley();
        self.inner.file_code.as_deref().filter(|_| native)
    }

    /// The profile of one variant.
    pub fn profile(&self, metered: bool) -> EngineProfile {
        self.inner.plain_profile.clone().with_fuel(metered)
    }

    /// The fingerprints this set loads: without fuel metering, then with.
    pub fn fingerprints(&self) -> [EngineFingerprint; 2] {
        [false, true].map(|metered| EngineFingerprint::of(&self.profile(metered)))
    }

    /// Which variant an artifact of fingerprint `fingerprint` is (`true`:
    /// fuel-metered), or `None` if this set loads neither.
    pub fn variant_of(&self, fingerprint: &EngineFingerprint) -> Option<bool> {
        let [plain, metered] = self.fingerprints();
        if *fingerprint == plain {
            Some(false)
        } else if *fingerprint == metered {
            Some(true)
        } else {
            None
        }
    }

    /// The engine of one variant.
    pub fn engine(&self, metered: bool) -> Result<&Engine, EngineError> {
        if !metered {
            return Ok(&self.inner.plain);
        }
        if let Some(engine) = self.inner.metered.get() {
            return Ok(engine);
        }
        let engine = new_engine_with(&self.profile(true), self.inner.file_code.clone())?;
        // A racing caller may have set it first; either engine will do, but
        // everyone must use the one kept.
        let _ = self.inner.metered.set(engine);
        self.inner
            .metered
            .get()
            .ok_or_else(|| EngineError::Invalid("the fuel-metered engine was not kept".into()))
    }

    /// Advances the epoch of every engine built so far.
    pub fn increment_epoch(&self) {
        self.inner.plain.increment_epoch();
        if let Some(metered) = self.inner.metered.get() {
            metered.increment_epoch();
        }
    }

    /// A ticker that advances this set's epochs until dropped.
    pub fn ticker(&self) -> std::io::Result<crate::run::ticker::EpochTicker> {
        let weak = Arc::downgrade(&self.inner);
        crate::run::ticker::EpochTicker::start_with(move || match weak.upgrade() {
            Some(inner) => {
                EngineSet { inner }.increment_epoch();
                true
            }
            None => false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ArtifactTarget;

    #[test]
    fn both_fuel_variants_are_recognised_and_nothing_else() {
        let set = EngineSet::new(&EngineProfile::default().with_target(ArtifactTarget::Pulley64)).unwrap();
        let [plain, metered] = set.fingerprints();
        assert_ne!(plain, metered);
        assert_eq!(set.variant_of(&plain), Some(false));
        assert_eq!(set.variant_of(&metered), Some(true));
        let other = EngineFingerprint::of(&EngineProfile::default().with_target(ArtifactTarget::Pulley32));
        assert_eq!(set.variant_of(&other), None);
        let no_epoch = EngineFingerprint::of(&set.profile(false).with_epoch(false));
        assert_eq!(set.variant_of(&no_epoch), None, "the daemon needs epoch checks");
    }

    #[test]
    fn the_metered_engine_is_made_once_on_demand() {
        let set = EngineSet::new(&EngineProfile::default().with_target(ArtifactTarget::Pulley64)).unwrap();
        assert!(!format!("{set:?}").contains("metered_built: true"));
        let first = set.engine(true).unwrap().clone();
        assert!(Engine::same(&first, set.engine(true).unwrap()));
        assert!(!Engine::same(&first, set.engine(false).unwrap()));
    }
}
