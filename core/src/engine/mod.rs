//! The engine profile and the one function that turns it into a wasmtime
//! [`Config`].
//!
//! Invariant: the compile side (`arcella compile`) and the device side (the
//! runner, later the daemon) both build their engine through [`build_config`],
//! so an artifact's wasm features and tunables always match the engine that
//! loads it (shared/dependency-facts.md, gotcha 1).

pub mod file_code;
mod set;

pub use set::EngineSet;

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

    /// Whether code for this target runs in a 32-bit address space (where
    /// a 4 GiB reservation per linear memory is impossible).
    pub fn is_32_bit(&self) -> bool {
        match self {
            Self::Native => cfg!(target_pointer_width = "32"),
            Self::Pulley32 => true,
            Self::Pulley64 => false,
            Self::Triple(triple) => ARCHES_32.contains(&triple.split('-').next().unwrap_or_default()),
        }
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

/// Architectures of 32-bit Linux targets Arcella knows.
pub(crate) const ARCHES_32: [&str; 8] = [
    "armv7",
    "arm",
    "armv6",
    "thumbv7neon",
    "i686",
    "i586",
    "riscv32gc",
    "mipsel",
];

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;

/// Where each linear memory lives: the default on 64-bit targets is
/// wasmtime's own (4 GiB reserved + 32 MiB guard: bounds checks become
/// guard-page faults), on 32-bit targets a small reservation with explicit
/// bounds checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryLayout {
    pub reservation: u64,
    pub guard_size: u64,
    pub reservation_for_growth: u64,
}

impl MemoryLayout {
    /// wasmtime 48's defaults for 64-bit hosts (`Tunables::default_u64`).
    pub const LARGE: Self = Self {
        reservation: 4 * GIB,
        guard_size: 32 * MIB,
        reservation_for_growth: 2 * GIB,
    };
    /// Arcella's small profile: 32-bit targets, and boards whose processes
    /// run under an address-space limit (`ulimit -v`).
    pub const SMALL: Self = Self {
        reservation: 32 * MIB,
        guard_size: 64 * KIB,
        reservation_for_growth: MIB,
    };

    /// Virtual address space one linear memory of at most `reservation`
    /// bytes takes: the reservation and its guard.
    pub fn span(&self) -> u64 {
        self.reservation.saturating_add(self.guard_size)
    }

    /// Whether the guard pages stand in for bounds checks on every 32-bit
    /// memory access (the reservation covers the whole 4 GiB index space;
    /// native code only: pulley always checks).
    pub fn elides_bounds_checks(&self) -> bool {
        self.reservation >= 4 * GIB && self.guard_size > 0
    }
}

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
    /// *artifact*: count instructions so a fuel limit can bound a guest.
    /// Off by default: it costs about a quarter of the guest's speed, so
    /// only modules with a fuel limit should carry it (`arcella compile
    /// --fuel`). An engine set ([`EngineSet`]) loads both variants.
    pub consume_fuel: bool,
    /// *artifact*: check an epoch counter at loop heads and calls, so a
    /// guest can be interrupted (timeouts) and made to yield (fair sharing).
    /// The daemon needs it; `arcella run` without `--timeout` does not.
    pub epoch_interruption: bool,
    /// *artifact*: virtual address space reserved per linear memory; unset,
    /// the target's default ([`MemoryLayout::LARGE`] on 64-bit targets,
    /// [`MemoryLayout::SMALL`] on 32-bit ones). A reservation below 4 GiB
    /// costs an explicit bounds check on every memory access but fits
    /// `ulimit -v` and 32-bit address spaces.
    pub memory_reservation: Option<u64>,
    /// *artifact*: guard region after each linear memory; unset, the
    /// target's default.
    pub memory_guard_size: Option<u64>,
    /// *artifact*: extra room reserved when a memory outgrows its
    /// reservation, so that growth does not always move it; unset, the
    /// target's default.
    pub memory_reservation_for_growth: Option<u64>,
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
            consume_fuel: false,
            epoch_interruption: true,
            memory_reservation: None,
            memory_guard_size: None,
            memory_reservation_for_growth: None,
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

    /// The same profile with or without fuel metering.
    pub fn with_fuel(mut self, consume_fuel: bool) -> Self {
        self.consume_fuel = consume_fuel;
        self
    }

    /// The same profile with or without epoch checks.
    pub fn with_epoch(mut self, epoch_interruption: bool) -> Self {
        self.epoch_interruption = epoch_interruption;
        self
    }

    /// What the profile compiles into guest code besides the guest, in words.
    pub fn instrumentation(&self) -> String {
        let fuel = if self.consume_fuel {
            "fuel metering"
        } else {
            "no fuel metering"
        };
        let epoch = if self.epoch_interruption {
            "epoch checks"
        } else {
            "no epoch checks"
        };
        let layout = self.memory_layout();
        let bounds = if layout.elides_bounds_checks() {
            "guard-page bounds checks"
        } else {
            "explicit bounds checks"
        };
        format!("{fuel}, {epoch}, {bounds}")
    }

    /// The linear-memory layout: the fields set, the target's defaults for
    /// the rest.
    pub fn memory_layout(&self) -> MemoryLayout {
        let mut default = if self.target.is_32_bit() {
            MemoryLayout::SMALL
        } else {
            MemoryLayout::LARGE
        };
        // As wasmtime: pulley never uses signals-based traps, so guard
        // pages cannot replace its bounds checks; it reserves none.
        if matches!(self.target, ArtifactTarget::Pulley32 | ArtifactTarget::Pulley64) {
            default.guard_size = 0;
        }
        MemoryLayout {
            reservation: self.memory_reservation.unwrap_or(default.reservation),
            guard_size: self.memory_guard_size.unwrap_or(default.guard_size),
            reservation_for_growth: self
                .memory_reservation_for_growth
                .unwrap_or(default.reservation_for_growth),
        }
    }

    /// Refuses a layout that cannot work under the process's address-space
    /// limit (`ulimit -v`, systemd's `LimitAS=`), if it has one: every
    /// module would fail to start with an anonymous mmap error instead.
    pub fn check_address_space(&self, limit: Option<u64>) -> Result<(), EngineError> {
        let Some(limit) = limit else { return Ok(()) };
        let span = self.memory_layout().span();
        if span.saturating_mul(ADDRESS_SPACE_SHARE) <= limit {
            return Ok(());
        }
        Err(EngineError::AddressSpace { limit, span })
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
        let layout = self.memory_layout();
        if layout.reservation < 64 * KIB {
            return Err(EngineError::Invalid(format!(
                "memory_reservation ({}) must be at least one wasm page (65536)",
                layout.reservation
            )));
        }
        if self.target.is_32_bit() && layout.span() > u64::from(u32::MAX) {
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
        "this process may map at most {} of address space (ulimit -v, systemd LimitAS=), but each linear memory \
         reserves {} (memory_reservation + memory_guard_size), so modules could not start. Use a board whose \
         [engine] keeps small reservations (one with an `address_space` key, such as small-128m), set [engine] \
         memory_reservation (e.g. 33554432) in arcella.toml, or lift the limit",
        crate::units::format_bytes(*.limit), crate::units::format_bytes(*.span)
    )]
    AddressSpace { limit: u64, span: u64 },
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

/// An address-space limit must leave room for this many linear memories
/// (and the process itself).
pub const ADDRESS_SPACE_SHARE: u64 = 4;

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
    let layout = profile.memory_layout();
    config
        .wasm_component_model(true)
        .consume_fuel(profile.consume_fuel)
        .epoch_interruption(profile.epoch_interruption)
        .memory_reservation(layout.reservation)
        .memory_guard_size(layout.guard_size)
        .memory_reservation_for_growth(layout.reservation_for_growth)
        .max_wasm_stack(profile.max_wasm_stack)
        .async_stack_size(profile.async_stack_size);
    Ok(config)
}

/// Builds an engine for `profile`.
pub fn new_engine(profile: &EngineProfile) -> Result<Engine, EngineError> {
    new_engine_with(profile, None)
}

/// Builds an engine for `profile` whose loaded code, if `file_code` is
/// given, may run from mappings of code files ([`file_code`]).
pub fn new_engine_with(
    profile: &EngineProfile,
    file_code: Option<std::sync::Arc<file_code::FileCode>>,
) -> Result<Engine, EngineError> {
    let mut config = build_config(profile)?;
    if let Some(file_code) = file_code {
        config.with_custom_code_memory(Some(file_code));
    }
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
    fn large_reservations_are_the_default_on_64_bit_targets_only() {
        let native = EngineProfile::default().with_target(ArtifactTarget::Triple("aarch64-unknown-linux-gnu".into()));
        assert_eq!(native.memory_layout(), MemoryLayout::LARGE);
        assert!(native.memory_layout().elides_bounds_checks());
        let pulley64 = EngineProfile::default().with_target(ArtifactTarget::Pulley64);
        assert_eq!(pulley64.memory_layout().reservation, MemoryLayout::LARGE.reservation);
        assert_eq!(pulley64.memory_layout().guard_size, 0, "wasmtime's pulley default");
        let armv7 =
            EngineProfile::default().with_target(ArtifactTarget::Triple("armv7-unknown-linux-gnueabihf".into()));
        assert_eq!(armv7.memory_layout(), MemoryLayout::SMALL);
        let pulley32 = EngineProfile::default().with_target(ArtifactTarget::Pulley32);
        assert_eq!(pulley32.memory_layout().reservation, MemoryLayout::SMALL.reservation);
        pulley32.validate().unwrap();
        let too_big = EngineProfile {
            memory_reservation: Some(4 << 30),
            ..pulley32
        };
        assert!(too_big.validate().is_err());
    }

    /// Issue 13's requirement that growth up to a module's limit never
    /// copies its memory: true with the 64-bit default layout (a 32-bit
    /// memory can never outgrow its 4 GiB reservation); the small profile
    /// moves a memory that outgrows its reservation (docs/artifacts.md).
    #[cfg(all(feature = "compiler", target_pointer_width = "64"))]
    #[test]
    fn memory_grows_in_place_with_large_reservations_and_moves_past_a_small_one() {
        let grows_in_place = |profile: &EngineProfile| {
            let engine = new_engine(profile).unwrap();
            let module = wasmtime::Module::new(&engine, "(module (memory (export \"m\") 1))").unwrap();
            let mut store = wasmtime::Store::new(&engine, ());
            let instance = wasmtime::Instance::new(&mut store, &module, &[]).unwrap();
            let memory = instance.get_memory(&mut store, "m").unwrap();
            let before = memory.data_ptr(&store);
            memory.grow(&mut store, 1024).unwrap(); // to 64 MiB + 1 page
            before == memory.data_ptr(&store)
        };
        assert!(grows_in_place(&EngineProfile::default()));
        let small = EngineProfile {
            memory_reservation: Some(16 << 20),
            memory_guard_size: Some(64 << 10),
            memory_reservation_for_growth: Some(1 << 20),
            ..EngineProfile::default()
        };
        assert!(!grows_in_place(&small));
    }

    #[test]
    fn an_address_space_limit_refuses_large_reservations_and_says_what_to_do() {
        let large = EngineProfile::default().with_target(ArtifactTarget::Pulley64);
        large.check_address_space(None).unwrap();
        let err = large.check_address_space(Some(256 << 20)).unwrap_err().to_string();
        assert!(
            err.contains("256 MiB") && err.contains("memory_reservation") && err.contains("small-128m"),
            "{err}"
        );
        let small = EngineProfile {
            memory_reservation: Some(16 << 20),
            memory_guard_size: Some(64 << 10),
            ..large
        };
        small.check_address_space(Some(256 << 20)).unwrap();
    }

    #[test]
    fn profile_parses_from_toml_and_refuses_unknown_keys() {
        let profile: EngineProfile = toml::from_str("target = \"pulley32\"\nmemory_reservation = 1048576").unwrap();
        assert_eq!(profile.target, ArtifactTarget::Pulley32);
        assert_eq!(profile.memory_layout().reservation, 1 << 20);
        assert!(profile.epoch_interruption, "unset keys keep their defaults");
        assert_eq!(
            profile.memory_layout().guard_size,
            0,
            "no guard pages for pulley, as wasmtime"
        );

        let err = toml::from_str::<EngineProfile>("memory_reservatoin = 1").unwrap_err();
        assert!(err.to_string().contains("memory_reservatoin"), "{err}");
        let err = toml::from_str::<EngineProfile>("target = \"arm\"").unwrap_err();
        assert!(err.to_string().contains("unknown artifact target"), "{err}");
    }
}
