//! Board files (`board-configs/NAME.toml`): what a kind of device is — its
//! target triple, which artifacts it runs, its RAM and memory budget, the
//! engine settings that fit that memory, default paths and worker limits.
//!
//! A board file is parsed with unknown keys refused, then [`Board::validate`]
//! checks what serde cannot: the artifact target against the triple, the
//! budgets against the RAM, the engine reservation against a 32-bit address
//! space. Every error names the file and the field.
//!
//! The build host uses [`Board::compile_profile`] (`arcella compile --board`)
//! and the device [`Board::device_profile`] (`board = "NAME"` in
//! arcella.toml); both have the same [`EngineFingerprint`], which is what
//! makes an artifact compiled for a board load on it.
//!
//! [`EngineFingerprint`]: crate::fingerprint::EngineFingerprint

pub mod builtin;
mod search;
#[cfg(test)]
mod tests;

pub use search::BoardSearch;

use crate::engine::{ArtifactTarget, EngineProfile, HOST_TRIPLE};
use serde::{Deserialize, Deserializer};
use std::path::{Path, PathBuf};

/// The board name that means "no board file: built-in defaults".
pub const GENERIC: &str = "generic";

/// One `board-configs/NAME.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Board {
    /// Must equal the file's name without `.toml`.
    pub name: String,
    /// One line for people.
    #[serde(default)]
    pub description: String,
    /// The Rust target triple the device binaries are built for.
    pub triple: String,
    /// What artifacts the device runs: `native` (Cranelift code for
    /// `triple`), `pulley32` or `pulley64` (interpreter bytecode).
    pub artifact: ArtifactTarget,
    /// The device's RAM.
    #[serde(deserialize_with = "size")]
    pub ram: u64,
    /// What all modules together may declare (`limits.memory`).
    #[serde(deserialize_with = "size")]
    pub memory_budget: u64,
    /// The address-space limit (`ulimit -v`, systemd `LimitAS=`) the
    /// board's daemon and workers run under, if any. A board that sets it
    /// must keep its linear-memory reservations small enough that four fit
    /// (64-bit targets otherwise reserve 4 GiB per memory).
    #[serde(default, deserialize_with = "opt_size")]
    pub address_space: Option<u64>,
    /// Limits a deployment gets when it names none.
    #[serde(default)]
    pub module_defaults: ModuleDefaults,
    /// Engine settings, without `target` (that is `artifact`).
    #[serde(default)]
    pub engine: EngineProfile,
    /// Where the daemon keeps things on this board.
    pub paths: BoardPaths,
    /// Worker process limits.
    pub workers: BoardWorkers,
}

/// `[module_defaults]` (also a key of arcella.toml).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModuleDefaults {
    /// Linear memory of a module whose deployment sets no `limits.memory`.
    #[serde(deserialize_with = "opt_size")]
    pub memory: Option<u64>,
}

/// `[paths]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoardPaths {
    /// Where packages install arcella.toml (what `--config` is given).
    pub config: PathBuf,
    pub data_dir: PathBuf,
    pub socket: PathBuf,
}

/// `[workers]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoardWorkers {
    #[serde(deserialize_with = "size")]
    pub memory: u64,
    pub pids: u64,
    pub open_files: u64,
}

/// Why a board file was refused or not found.
#[derive(Debug, thiserror::Error)]
pub enum BoardError {
    #[error("{file}: {source}")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
    /// `message` already starts with `file:line:column`.
    #[error("{message}")]
    Parse { file: String, message: String },
    #[error("{file}: `{field}`: {message}")]
    Invalid {
        file: String,
        field: &'static str,
        message: String,
    },
    #[error(
        "no board `{name}`: looked for {name}.toml in {searched}, and among the built-in boards ({}); name a board file by path or pick another directory",
        builtin::names()
    )]
    NotFound { name: String, searched: String },
}

const MIB: u64 = 1 << 20;
/// The least a worker needs for its own runtime (as `[workers] memory`).
const MIN_WORKER_MEMORY: u64 = 16 * MIB;
/// On a 32-bit device one linear memory's reservation plus guards must
/// leave room in the ~3 GiB user address space for the daemon and the
/// other modules: at most 1 GiB each.
const MAX_RESERVATION_32: u64 = 1 << 30;
/// Architectures Cranelift (wasmtime 48) generates code for.
const NATIVE_ARCHES: [&str; 4] = ["x86_64", "aarch64", "riscv64gc", "s390x"];
const ARCHES_64: [&str; 6] = ["x86_64", "aarch64", "riscv64gc", "riscv64", "s390x", "powerpc64le"];
use crate::engine::ARCHES_32;

impl Board {
    /// Reads and validates a board file.
    pub fn load(file: &Path) -> Result<Self, BoardError> {
        let shown = file.display().to_string();
        let text = std::fs::read_to_string(file).map_err(|source| BoardError::Read {
            file: shown.clone(),
            source,
        })?;
        let board = Self::parse(&text, &shown)?;
        if let Some(stem) = file.file_stem().and_then(|s| s.to_str())
            && stem != board.name
        {
            return Err(BoardError::Invalid {
                file: shown,
                field: "name",
                message: format!("`{}` differs from the file name `{stem}.toml`", board.name),
            });
        }
        Ok(board)
    }

    /// Parses and validates board text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Self, BoardError> {
        let board: Self = toml::from_str(text).map_err(|e| BoardError::Parse {
            file: file.to_owned(),
            message: crate::units::describe_toml_error(file, &e, text),
        })?;
        board.validate(file)?;
        Ok(board)
    }

    /// The checks serde cannot express.
    pub fn validate(&self, file: &str) -> Result<(), BoardError> {
        let invalid = |field, message: String| BoardError::Invalid {
            file: file.to_owned(),
            field,
            message,
        };
        if self.name.is_empty() || self.name == GENERIC {
            return Err(invalid(
                "name",
                format!("must be set and not `{GENERIC}` (the built-in defaults)"),
            ));
        }
        crate::manifest::check_name(&self.name).map_err(|m| invalid("name", m))?;
        let arch = self.arch();
        if self.triple.split('-').count() < 3 || !ARCHES_64.contains(&arch) && !ARCHES_32.contains(&arch) {
            return Err(invalid(
                "triple",
                format!(
                    "`{}` is not a Linux target triple Arcella knows (architectures: {}, {})",
                    self.triple,
                    ARCHES_64.join(", "),
                    ARCHES_32.join(", ")
                ),
            ));
        }
        self.check_artifact().map_err(|m| invalid("artifact", m))?;
        if self.engine.target != ArtifactTarget::Native {
            return Err(invalid(
                "engine.target",
                "leave it out: a board's artifact target is the top-level `artifact` key".into(),
            ));
        }
        self.device_profile()
            .validate()
            .map_err(|e| invalid("engine", e.to_string()))?;
        if let Some(limit) = self.address_space {
            self.device_profile()
                .check_address_space(Some(limit))
                .map_err(|e| invalid("engine.memory_reservation", format!("address_space: {e}")))?;
        }
        if self.is_32_bit() {
            let layout = self.device_profile().memory_layout();
            let span = layout.span() + layout.reservation_for_growth;
            if span > MAX_RESERVATION_32 {
                return Err(invalid(
                    "engine.memory_reservation",
                    format!(
                        "{span} bytes with guard and growth room does not fit a 32-bit address space: \
                         at most {MAX_RESERVATION_32} (1 GiB) per linear memory on {}",
                        self.triple
                    ),
                ));
            }
        }
        if self.ram < 32 * MIB {
            return Err(invalid(
                "ram",
                format!("{} bytes: Arcella needs at least 32MiB", self.ram),
            ));
        }
        if self.memory_budget == 0 || self.memory_budget > self.ram {
            return Err(invalid(
                "memory_budget",
                format!(
                    "{} must be above 0 and at most the board's ram ({})",
                    crate::units::format_bytes(self.memory_budget),
                    crate::units::format_bytes(self.ram)
                ),
            ));
        }
        if let Some(memory) = self.module_defaults.memory
            && !(64 * 1024..=self.memory_budget).contains(&memory)
        {
            return Err(invalid(
                "module_defaults.memory",
                format!("{memory} bytes must be at least one wasm page (64K) and at most memory_budget"),
            ));
        }
        if self.workers.memory < MIN_WORKER_MEMORY || self.workers.memory > self.ram {
            return Err(invalid(
                "workers.memory",
                format!(
                    "{} must be at least 16MiB (a worker's own runtime) and at most the board's ram",
                    crate::units::format_bytes(self.workers.memory)
                ),
            ));
        }
        if self.workers.open_files < 16 || self.workers.pids == 0 {
            return Err(invalid(
                "workers",
                "open_files must be at least 16 and pids above 0".into(),
            ));
        }
        let paths = [
            ("paths.config", &self.paths.config),
            ("paths.data_dir", &self.paths.data_dir),
            ("paths.socket", &self.paths.socket),
        ];
        for (field, path) in paths {
            if !path.is_absolute() {
                return Err(invalid(field, format!("`{}` is not an absolute path", path.display())));
            }
        }
        if self.paths.socket.as_os_str().len() > 107 {
            return Err(invalid(
                "paths.socket",
                "a Unix socket path must be at most 107 bytes".into(),
            ));
        }
        Ok(())
    }

    fn arch(&self) -> &str {
        self.triple.split('-').next().unwrap_or_default()
    }

    fn is_32_bit(&self) -> bool {
        ARCHES_32.contains(&self.arch())
    }

    fn check_artifact(&self) -> Result<(), String> {
        let arch = self.arch();
        match &self.artifact {
            ArtifactTarget::Native if !NATIVE_ARCHES.contains(&arch) => Err(format!(
                "`native`: Cranelift has no backend for {arch} ({}); use pulley{}",
                self.triple,
                if self.is_32_bit() { "32" } else { "64" }
            )),
            ArtifactTarget::Native => Ok(()),
            ArtifactTarget::Pulley32 if !self.is_32_bit() => Err(format!(
                "`pulley32` does not load on a 64-bit host ({}); use pulley64 or native",
                self.triple
            )),
            ArtifactTarget::Pulley64 if self.is_32_bit() => Err(format!(
                "`pulley64` does not load on a 32-bit host ({}); use pulley32",
                self.triple
            )),
            ArtifactTarget::Pulley32 | ArtifactTarget::Pulley64 => Ok(()),
            ArtifactTarget::Triple(triple) => Err(format!(
                "`{triple}`: write `native` (the code is for `triple`), `pulley32` or `pulley64`"
            )),
        }
    }

    /// The engine a device of this board runs: `native` when this binary
    /// is built for the board's triple, so wasmtime uses this CPU's features.
    pub fn device_profile(&self) -> EngineProfile {
        let target = match &self.artifact {
            ArtifactTarget::Native if self.triple == HOST_TRIPLE => ArtifactTarget::Native,
            ArtifactTarget::Native => ArtifactTarget::Triple(self.triple.clone()),
            pulley => pulley.clone(),
        };
        self.engine.clone().with_target(target)
    }

    /// The engine a build host compiles this board's artifacts with: the
    /// triple named, so the code assumes only the baseline CPU of that
    /// architecture (not the build host's features). Its fingerprint equals
    /// [`Board::device_profile`]'s.
    pub fn compile_profile(&self) -> EngineProfile {
        let target = match &self.artifact {
            ArtifactTarget::Native => ArtifactTarget::Triple(self.triple.clone()),
            pulley => pulley.clone(),
        };
        self.engine.clone().with_target(target)
    }

    /// This board's settings as an arcella.toml fragment, to lay under a
    /// configuration file so that the keys the file sets win.
    pub fn config_defaults(&self) -> toml::Table {
        let text = |v: &dyn ToString| toml::Value::String(v.to_string());
        let int = |v: u64| toml::Value::Integer(i64::try_from(v).unwrap_or(i64::MAX));
        let mut engine = toml::Table::new();
        let profile = self.device_profile();
        engine.insert("target".into(), text(&profile.target));
        engine.insert("consume_fuel".into(), toml::Value::Boolean(profile.consume_fuel));
        engine.insert(
            "epoch_interruption".into(),
            toml::Value::Boolean(profile.epoch_interruption),
        );
        let layout = profile.memory_layout();
        engine.insert("memory_reservation".into(), int(layout.reservation));
        engine.insert("memory_guard_size".into(), int(layout.guard_size));
        engine.insert(
            "memory_reservation_for_growth".into(),
            int(layout.reservation_for_growth),
        );
        engine.insert("max_wasm_stack".into(), int(profile.max_wasm_stack as u64));
        engine.insert("async_stack_size".into(), int(profile.async_stack_size as u64));
        let mut workers = toml::Table::new();
        workers.insert("memory".into(), text(&self.workers.memory));
        workers.insert("pids".into(), int(self.workers.pids));
        workers.insert("open_files".into(), int(self.workers.open_files));
        let mut module_defaults = toml::Table::new();
        if let Some(memory) = self.module_defaults.memory {
            module_defaults.insert("memory".into(), text(&memory));
        }
        let mut table = toml::Table::new();
        table.insert("data_dir".into(), text(&self.paths.data_dir.display()));
        table.insert("socket".into(), text(&self.paths.socket.display()));
        table.insert("memory_budget".into(), text(&self.memory_budget));
        table.insert("engine".into(), toml::Value::Table(engine));
        table.insert("workers".into(), toml::Value::Table(workers));
        table.insert("module_defaults".into(), toml::Value::Table(module_defaults));
        table
    }
}

/// Lays `over` on `base`: tables merge key by key, anything else in `over`
/// replaces what `base` has.
pub fn merge_tables(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(below)), toml::Value::Table(above)) => merge_tables(below, above),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

fn size<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let text = String::deserialize(d)?;
    crate::units::parse_bytes(&text).map_err(serde::de::Error::custom)
}

fn opt_size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    size(d).map(Some)
}
