//! The engine profile and the one function that turns it into a wasmtime
//! [`Config`].
//!
//! Invariant: the compile side (`arcella compile`) and the device side (the
//! runner, later the daemon) both build their engine through [`build_config`],
//! so an artifact's wasm features and tunables always match the engine that
//! loads it (shared/dependency-facts.md, gotcha 1).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use wasmtime::{Config, Engine};

/// The triple this binary was built for (set by `core/build.rs`).
pub const HOST_TRIPLE: &str = env!("ARCELLA_HOST_TRIPLE");

/// Which machine code an artifact holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum ArtifactTarget {
    /// This machine's own ISA, with the CPU features detected on it.
    #[default]
    Native,
    /// Wasmtime's portable interpreter bytecode for 32-bit hosts (armv7).
    Pulley32,
    /// Wasmtime's portable interpreter bytecode for 64-bit hosts.
    Pulley64,
    /// Native code for an explicit target triple, baseline CPU features.
    Triple(String),
}

impl ArtifactTarget {
    /// The name the target goes by in fingerprints: `native` resolves to the
    /// host triple, so an artifact compiled natively on an aarch64 box and
    /// one compiled for `aarch64-unknown-linux-gnu` elsewhere compare equal.
    pub fn resolved(&self) -> &str {
        match self {
            Self::Native => HOST_TRIPLE,
            Self::Pulley32 => "pulley32",
            Self::Pulley64 => "pulley64",
            Self::Triple(triple) => triple,
        }
    }

    /// The pulley flavour whose pointer width matches this host.
    pub fn host_pulley() -> Self {
        if cfg!(target_pointer_width = "64") {
            Self::Pulley64
        } else {
            Self::Pulley32
        }
    }

    /// Whether an engine on this machine can execute code for this target.
    pub fn runs_here(&self) -> bool {
        let resolved = self.resolved();
        resolved == HOST_TRIPLE || *self == Self::host_pulley() || resolved == Self::host_pulley().resolved()
    }

    /// Parses a resolved target name (as recorded in a fingerprint) back.
    pub fn from_resolved(name: &str) -> Self {
        match name {
            "pulley32" => Self::Pulley32,
            "pulley64" => Self::Pulley64,
            triple if triple == HOST_TRIPLE => Self::Native,
            triple => Self::Triple(triple.to_owned()),
        }
    }
}

impl fmt::Display for ArtifactTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Native => f.write_str("native"),
            other => f.write_str(other.resolved()),
        }
    }
}

impl FromStr for ArtifactTarget {
    type Err = EngineError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "native" => Ok(Self::Native),
            "pulley32" => Ok(Self::Pulley32),
            "pulley64" => Ok(Self::Pulley64),
            triple if triple.split('-').count() >= 2 && !triple.contains(char::is_whitespace) => {
                Ok(Self::Triple(triple.to_owned()))
            }
            other => Err(EngineError::BadTarget(other.to_owned())),
        }
    }
}

impl Serialize for ArtifactTarget {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ArtifactTarget {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;

/// Engine settings that matter on a small device.
///
/// Fields marked *artifact* change the generated code: an artifact is only
/// valid for an engine with the same values (they go into the fingerprint).
/// The others are runtime-only and may differ between compile host and
/// device.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineProfile {
    /// *artifact*: native code or pulley bytecode, and for which machine.
    pub target: ArtifactTarget,
    /// *artifact*: count instructions so `--fuel` can bound a guest.
    pub consume_fuel: bool,
    /// *artifact*: check an epoch counter at loop heads and calls, so a
    /// guest can be interrupted (timeouts) and made to yield (fair sharing).
    pub epoch_interruption: bool,
    /// *artifact*: virtual address space reserved per linear memory. Wasmtime
    /// defaults to 4 GiB (+ guards) on 64-bit hosts, which lets it elide
    /// bounds checks but makes `ulimit -v` and 32-bit devices impossible; a
    /// few MiB keeps many modules within a 256 MiB device, at the price of
    /// explicit bounds checks.
    pub memory_reservation: u64,
    /// *artifact*: guard region after each linear memory.
    pub memory_guard_size: u64,
    /// *artifact*: extra room reserved when a memory grows, so that growth
    /// does not always move it.
    pub memory_reservation_for_growth: u64,
    /// Largest wasm stack a guest may use before it traps with a stack
    /// overflow.
    pub max_wasm_stack: usize,
    /// Native stack of the fiber each async guest call runs on; must exceed
    /// `max_wasm_stack` (host calls run on it too). Wasmtime 48 always
    /// supports async calls (`Config::async_support` is a no-op there), so
    /// this is the profile's async knob.
    pub async_stack_size: usize,
}

impl Default for EngineProfile {
    fn default() -> Self {
        Self {
            target: ArtifactTarget::Native,
            consume_fuel: true,
            epoch_interruption: true,
            memory_reservation: 32 * MIB,
            memory_guard_size: 64 * KIB,
            memory_reservation_for_growth: MIB,
            max_wasm_stack: 512 * KIB as usize,
            async_stack_size: 1024 * KIB as usize,
        }
    }
}

impl EngineProfile {
    /// The same profile with another artifact target.
    pub fn with_target(mut self, target: ArtifactTarget) -> Self {
        self.target = target;
        self
    }

    /// Checks the relations between fields that wasmtime would otherwise
    /// reject with a less helpful message, or accept and misbehave.
    pub fn validate(&self) -> Result<(), EngineError> {
        if self.max_wasm_stack == 0 {
            return Err(EngineError::Invalid("max_wasm_stack must be greater than 0".into()));
        }
        if self.async_stack_size <= self.max_wasm_stack {
            return Err(EngineError::Invalid(format!(
                "async_stack_size ({}) must be larger than max_wasm_stack ({}): host calls need room on the same stack",
                self.async_stack_size, self.max_wasm_stack
            )));
        }
        if self.memory_reservation < 64 * KIB {
            return Err(EngineError::Invalid(format!(
                "memory_reservation ({}) must be at least one wasm page (65536)",
                self.memory_reservation
            )));
        }
        if self.target == ArtifactTarget::Pulley32 && self.memory_reservation > u64::from(u32::MAX) {
            return Err(EngineError::Invalid(
                "memory_reservation does not fit a 32-bit address space (target pulley32)".into(),
            ));
        }
        Ok(())
    }
}

/// Errors from building an engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(
        "unknown artifact target `{0}`: expected native, pulley32, pulley64 or a target triple such as aarch64-unknown-linux-gnu"
    )]
    BadTarget(String),
    #[error("invalid engine profile: {0}")]
    Invalid(String),
    #[error(
        "wasmtime rejected the engine settings for target {target}: {source}{}",
        no_backend_hint(target)
    )]
    Wasmtime {
        target: String,
        #[source]
        source: wasmtime::Error,
    },
}

/// What to do instead when `target` is a triple Cranelift has no backend
/// for (32-bit ARM above all): its interpreter bytecode.
fn no_backend_hint(target: &str) -> &'static str {
    let arch = target.split('-').next().unwrap_or_default();
    if arch.starts_with("arm") || arch.starts_with("thumb") {
        " (Cranelift has no 32-bit ARM backend: compile with --target pulley32, or --board armv7-hf, \
         whose artifacts are pulley32)"
    } else if ["i386", "i586", "i686", "riscv32", "mips", "mipsel", "powerpc"].contains(&arch) {
        " (Cranelift has no backend for this 32-bit architecture: compile with --target pulley32)"
    } else {
        ""
    }
}

/// The one function that turns a profile into a wasmtime [`Config`].
pub fn build_config(profile: &EngineProfile) -> Result<Config, EngineError> {
    profile.validate()?;
    let wasmtime_err = |source| EngineError::Wasmtime {
        target: profile.target.to_string(),
        source,
    };
    let mut config = Config::new();
    match &profile.target {
        // No explicit target: Cranelift detects this CPU's features.
        ArtifactTarget::Native => {}
        other => {
            config.target(other.resolved()).map_err(wasmtime_err)?;
        }
    }
    config
        .wasm_component_model(true)
        .consume_fuel(profile.consume_fuel)
        .epoch_interruption(profile.epoch_interruption)
        .memory_reservation(profile.memory_reservation)
        .memory_guard_size(profile.memory_guard_size)
        .memory_reservation_for_growth(profile.memory_reservation_for_growth)
        .max_wasm_stack(profile.max_wasm_stack)
        .async_stack_size(profile.async_stack_size);
    Ok(config)
}

/// Builds an engine for `profile`.
pub fn new_engine(profile: &EngineProfile) -> Result<Engine, EngineError> {
    let config = build_config(profile)?;
    Engine::new(&config).map_err(|source| EngineError::Wasmtime {
        target: profile.target.to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_names_round_trip() {
        for name in ["native", "pulley32", "pulley64", "aarch64-unknown-linux-gnu"] {
            let target: ArtifactTarget = name.parse().unwrap();
            assert_eq!(target.to_string(), name);
        }
        assert!("arm".parse::<ArtifactTarget>().is_err());
        assert!("".parse::<ArtifactTarget>().is_err());
    }

    #[test]
    fn native_resolves_to_the_host_triple() {
        assert_eq!(ArtifactTarget::Native.resolved(), HOST_TRIPLE);
        assert!(ArtifactTarget::Native.runs_here());
        assert!(ArtifactTarget::host_pulley().runs_here());
        assert!(!ArtifactTarget::Triple("riscv64gc-unknown-linux-gnu".into()).runs_here());
    }

    #[test]
    fn stack_sizes_are_checked() {
        let profile = EngineProfile {
            async_stack_size: 1024,
            max_wasm_stack: 4096,
            ..EngineProfile::default()
        };
        let err = profile.validate().unwrap_err().to_string();
        assert!(err.contains("async_stack_size"), "{err}");
    }

    #[test]
    fn profile_parses_from_toml_and_refuses_unknown_keys() {
        let profile: EngineProfile = toml::from_str("target = \"pulley32\"\nmemory_reservation = 1048576").unwrap();
        assert_eq!(profile.target, ArtifactTarget::Pulley32);
        assert_eq!(profile.memory_reservation, 1 << 20);
        assert!(profile.consume_fuel, "unset keys keep their defaults");

        let err = toml::from_str::<EngineProfile>("memory_reservatoin = 1").unwrap_err();
        assert!(err.to_string().contains("memory_reservatoin"), "{err}");
        let err = toml::from_str::<EngineProfile>("target = \"arm\"").unwrap_err();
        assert!(err.to_string().contains("unknown artifact target"), "{err}");
    }
}
