//! `[workers]` in arcella.toml: how worker processes are found, confined
//! and timed, with per-group overrides under `[workers.groups.NAME]`.

use crate::protocol::worker::FilesystemWalls;
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// `[workers]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerConfig {
    /// The `arcella-worker` binary; default: beside the daemon's executable.
    pub binary: Option<PathBuf>,
    /// Who workers run as when the daemon runs as root (a user name or a
    /// uid) and `uids` is off. Ignored otherwise: workers run as the
    /// daemon's user.
    pub user: String,
    /// When the daemon runs as root: each group's workers run as a uid of
    /// their own from this range, `"FIRST-LAST"` (see `uids.rs`); `""`
    /// runs every worker as `user`.
    pub uids: String,
    /// Each worker's memory budget: RLIMIT_DATA, and `memory.max` where a
    /// cgroup v2 can be made.
    #[serde(deserialize_with = "size")]
    pub memory: u64,
    /// Open files per worker (RLIMIT_NOFILE).
    pub open_files: u64,
    /// Tasks per worker (`pids.max`, cgroup v2 only).
    pub pids: u64,
    /// Install the seccomp allowlist in workers.
    pub seccomp: bool,
    /// What workers wall themselves in with: `"auto"` (Landlock, else a
    /// mount namespace, else none), `"landlock"` or `"mount-namespace"`.
    #[serde(deserialize_with = "filesystem_walls")]
    pub filesystem_walls: FilesystemWalls,
    /// The longest a worker may take to answer any request before it is
    /// deemed hung and killed.
    #[serde(deserialize_with = "duration")]
    pub ipc_timeout: Duration,
    /// Between SIGTERM and SIGKILL when a worker must go.
    #[serde(deserialize_with = "duration")]
    pub kill_grace: Duration,
    /// Workers whose code file is at least this big are forked from a
    /// template process holding that code loaded, shared copy-on-write
    /// between them, instead of each loading its own copy (`"off"`: every
    /// worker is exec'd afresh). See docs/security.md.
    #[serde(deserialize_with = "size_or_off")]
    pub template_above: Option<u64>,
    /// Per-group overrides.
    pub groups: BTreeMap<String, GroupConfig>,
}

/// Big enough for interpreters built into a component (Python's is 18 to
/// 45 MB, JavaScript's about 10 MB); below it a template would cost more
/// than it shares.
pub const DEFAULT_TEMPLATE_ABOVE: u64 = 8 << 20;

/// A range no distribution or systemd hands out (systemd's
/// docs/UIDS-GIDS.md: above the container range, below 2^31).
pub const DEFAULT_UIDS: &str = "1879048192-1879049191";

/// `[workers.groups.NAME]`: anything unset comes from `[workers]`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GroupConfig {
    #[serde(deserialize_with = "opt_size")]
    pub memory: Option<u64>,
    pub open_files: Option<u64>,
    pub pids: Option<u64>,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            binary: None,
            user: "nobody".into(),
            uids: DEFAULT_UIDS.into(),
            memory: 128 << 20,
            open_files: 64,
            pids: 64,
            seccomp: true,
            filesystem_walls: FilesystemWalls::Auto,
            ipc_timeout: Duration::from_secs(5),
            kill_grace: Duration::from_secs(2),
            template_above: Some(DEFAULT_TEMPLATE_ABOVE),
            groups: BTreeMap::new(),
        }
    }
}

/// The settings one group's worker gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupLimits {
    pub memory: u64,
    pub open_files: u64,
    pub pids: u64,
}

impl WorkerConfig {
    /// The limits for `group`, overrides applied.
    pub fn limits_for(&self, group: &str) -> GroupLimits {
        let over = self.groups.get(group).cloned().unwrap_or_default();
        GroupLimits {
            memory: over.memory.unwrap_or(self.memory),
            open_files: over.open_files.unwrap_or(self.open_files),
            pids: over.pids.unwrap_or(self.pids),
        }
    }

    /// The checks serde cannot express; `Err((key, message))`.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        const MIN_MEMORY: u64 = 16 << 20;
        let memories = std::iter::once(("workers.memory", self.memory)).chain(
            self.groups
                .values()
                .filter_map(|g| g.memory)
                .map(|m| ("workers.groups.*.memory", m)),
        );
        for (key, memory) in memories {
            if memory < MIN_MEMORY {
                return Err((
                    key,
                    format!("{memory} bytes is below the 16MiB a worker needs for its own runtime"),
                ));
            }
        }
        if !self.uids.is_empty() {
            super::uids::parse_range(&self.uids).map_err(|m| ("workers.uids", m))?;
        }
        if self.open_files < 16 {
            return Err(("workers.open_files", "must be at least 16".into()));
        }
        if self.ipc_timeout.is_zero() || self.kill_grace.is_zero() {
            return Err(("workers.ipc_timeout", "timeouts must be above zero".into()));
        }
        for name in self.groups.keys() {
            crate::manifest::check_name(name).map_err(|m| ("workers.groups", format!("`{name}`: {m}")))?;
        }
        Ok(())
    }
}

fn size<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let text = String::deserialize(d)?;
    crate::units::parse_bytes(&text).map_err(serde::de::Error::custom)
}

fn opt_size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    size(d).map(Some)
}

fn size_or_off<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let text = String::deserialize(d)?;
    if text == "off" {
        return Ok(None);
    }
    crate::units::parse_bytes(&text)
        .map(Some)
        .map_err(|e| serde::de::Error::custom(format!("`workers.template_above`: {e}, or \"off\"")))
}

fn filesystem_walls<'de, D: Deserializer<'de>>(d: D) -> Result<FilesystemWalls, D::Error> {
    let text = String::deserialize(d)?;
    FilesystemWalls::from_name(&text).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "`workers.filesystem_walls`: `{text}` is not one of \"{}\"",
            FilesystemWalls::NAMES.join("\", \"")
        ))
    })
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    crate::units::parse_duration(&text).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use crate::daemon::config::DaemonConfig;

    #[test]
    fn groups_override_the_defaults() {
        let config = DaemonConfig::parse(
            "[workers]\nmemory = \"64MiB\"\nopen_files = 32\n[workers.groups.sensors]\nmemory = \"24MiB\"\n",
            "a.toml",
        )
        .unwrap();
        let sensors = config.workers.limits_for("sensors");
        assert_eq!((sensors.memory, sensors.open_files), (24 << 20, 32));
        assert_eq!(config.workers.limits_for("other").memory, 64 << 20);
    }

    #[test]
    fn bad_worker_settings_name_the_key() {
        for (text, key) in [
            ("[workers]\nmemory = \"1MiB\"\n", "workers.memory"),
            ("[workers.groups.a]\nmemory = \"2MiB\"\n", "workers.groups.*.memory"),
            ("[workers]\nopen_files = 3\n", "workers.open_files"),
            ("[workers.groups.\"Bad Name\"]\n", "workers.groups"),
            ("[workers]\nipc_timeout = \"0s\"\n", "workers.ipc_timeout"),
            ("[workers]\nuids = \"0-100\"\n", "workers.uids"),
            ("[workers]\nuids = \"2000\"\n", "workers.uids"),
        ] {
            let err = DaemonConfig::parse(text, "a.toml").unwrap_err().to_string();
            assert!(err.contains(key), "{text}: {err}");
        }
        let err = DaemonConfig::parse("[workers]\nmemroy = \"64MiB\"\n", "a.toml")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("a.toml:2:") && err.contains("memroy"), "{err}");
    }

    #[test]
    fn template_above_takes_a_size_or_off_and_refuses_others_naming_the_key() {
        let parse = |value: &str| DaemonConfig::parse(&format!("[workers]\ntemplate_above = \"{value}\"\n"), "a.toml");
        assert_eq!(
            DaemonConfig::parse("", "a.toml").unwrap().workers.template_above,
            Some(super::DEFAULT_TEMPLATE_ABOVE)
        );
        assert_eq!(parse("16MiB").unwrap().workers.template_above, Some(16 << 20));
        assert_eq!(parse("0").unwrap().workers.template_above, Some(0));
        assert_eq!(parse("off").unwrap().workers.template_above, None);
        let err = parse("big").unwrap_err().to_string();
        assert!(
            err.contains("workers.template_above") && err.contains("\"off\""),
            "{err}"
        );
    }

    #[test]
    fn filesystem_walls_take_three_names_and_refuse_others_naming_the_key() {
        use crate::protocol::worker::FilesystemWalls;
        let parse =
            |value: &str| DaemonConfig::parse(&format!("[workers]\nfilesystem_walls = \"{value}\"\n"), "a.toml");
        assert_eq!(
            DaemonConfig::parse("", "a.toml").unwrap().workers.filesystem_walls,
            FilesystemWalls::Auto
        );
        for (name, kind) in [
            ("auto", FilesystemWalls::Auto),
            ("landlock", FilesystemWalls::Landlock),
            ("mount-namespace", FilesystemWalls::MountNamespace),
        ] {
            assert_eq!(parse(name).unwrap().workers.filesystem_walls, kind);
        }
        let err = parse("chroot").unwrap_err().to_string();
        assert_eq!(
            err,
            "a.toml:2:20: `workers.filesystem_walls`: `chroot` is not one of \"auto\", \"landlock\", \"mount-namespace\""
        );
    }
}
