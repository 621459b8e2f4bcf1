//! `[capabilities]`: everything a guest may reach on the host. Nothing is
//! granted unless listed here.

use super::locate::KeyPath;
use super::names::check_no_nul;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The most bytes `[capabilities]` (args, env and dirs together, as
/// postcard encodes them) may take: they travel in the one message that
/// starts a module in its worker, which is at most
/// [`crate::protocol::worker::MAX_WORKER_MESSAGE`] (16 KiB); the rest of
/// that message (id, entrypoint, limits) fits in what is left.
pub const MAX_CAPABILITIES_BYTES: usize = 12 * 1024;

/// What the guest is granted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Capabilities {
    /// `[[capabilities.dirs]]`: host directories mapped into the guest.
    pub dirs: Vec<DirCapability>,
    /// `[capabilities.env]`: the guest's environment, `KEY = "value"`.
    pub env: BTreeMap<String, String>,
    /// `capabilities.args`: the guest's arguments after its name.
    pub args: Vec<String>,
    /// `[capabilities.network]`: sockets (components only).
    #[serde(skip_serializing_if = "super::network::NetworkCapability::is_empty")]
    pub network: super::network::NetworkCapability,
    /// `[capabilities.keyvalue]`: durable key-value buckets (none if absent).
    pub keyvalue: Option<super::keyvalue::KeyValueCapability>,
    /// `[capabilities.messaging]`: topics to publish on and to receive
    /// (none if absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub messaging: Option<super::messaging::MessagingCapability>,
}

/// A host directory preopened in the guest.
/// TOML: `host = "/var/lib/x"`, `guest = "/data"`, `mode = "ro" | "rw"` (default `"ro"`),
/// `quota = "10M"` (read-write directories only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "DirToml", into = "DirToml")]
pub struct DirCapability {
    /// An absolute host path.
    pub host: PathBuf,
    /// Where the guest sees it; starts with `/`.
    pub guest: String,
    /// `mode = "ro"` (true, the default) or `"rw"` (false).
    pub read_only: bool,
    /// `quota`: the most bytes the directory may hold while the module
    /// runs (checked every [`QUOTA_PERIOD`]; over it, the module fails).
    pub quota: Option<u64>,
}

/// How often the daemon measures quota'd directories: a guest can write
/// past its quota by what it writes in this long before it is stopped.
pub const QUOTA_PERIOD: std::time::Duration = std::time::Duration::from_secs(2);

/// `mode`: how a directory is granted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum DirMode {
    #[default]
    Ro,
    Rw,
}

/// [`DirCapability`] as written in TOML.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DirToml {
    host: PathBuf,
    guest: String,
    #[serde(default)]
    mode: DirMode,
    #[serde(default, with = "super::units::opt_size")]
    quota: Option<u64>,
}

impl From<DirToml> for DirCapability {
    fn from(dir: DirToml) -> Self {
        Self {
            host: dir.host,
            guest: dir.guest,
            read_only: dir.mode == DirMode::Ro,
            quota: dir.quota,
        }
    }
}

impl From<DirCapability> for DirToml {
    fn from(dir: DirCapability) -> Self {
        let mode = if dir.read_only { DirMode::Ro } else { DirMode::Rw };
        Self {
            host: dir.host,
            guest: dir.guest,
            mode,
            quota: dir.quota,
        }
    }
}

/// `/data/` and `/data` are one guest path.
fn normalise_guest(guest: &str) -> &str {
    match guest.trim_end_matches('/') {
        "" => "/",
        trimmed => trimmed,
    }
}

impl Capabilities {
    /// Rule 7. The error is the key under `capabilities` and what to fix.
    pub(super) fn check(&self) -> Result<(), (KeyPath, String)> {
        for (i, dir) in self.dirs.iter().enumerate() {
            let at = |key: &str| KeyPath::new("dirs").index(i).key(key);
            let host = dir.host.to_string_lossy();
            if !dir.host.is_absolute() {
                return Err((
                    at("host"),
                    format!("= {host:?} is not an absolute path; give the full host path"),
                ));
            }
            check_no_nul(&host).map_err(|m| (at("host"), format!("= {host:?} {m}")))?;
            if !dir.guest.starts_with('/') {
                let g = &dir.guest;
                return Err((
                    at("guest"),
                    format!("= {g:?} does not start with '/'; write it as \"/{g}\""),
                ));
            }
            check_no_nul(&dir.guest).map_err(|m| (at("guest"), format!("= {:?} {m}", dir.guest)))?;
            match dir.quota {
                Some(_) if dir.read_only => {
                    return Err((
                        at("quota"),
                        "applies to read-write directories only; add mode = \"rw\" or remove the quota".to_owned(),
                    ));
                }
                Some(quota) if quota < 4096 => {
                    return Err((
                        at("quota"),
                        format!("= {quota} is below 4K, one block of most file systems"),
                    ));
                }
                _ => {}
            }
            let guest = normalise_guest(&dir.guest);
            if let Some(j) = self.dirs[..i].iter().position(|d| normalise_guest(&d.guest) == guest) {
                return Err((
                    at("guest"),
                    format!(
                        "= {:?} is already mapped by `capabilities.dirs[{j}]`; each guest path may be mapped once",
                        dir.guest
                    ),
                ));
            }
        }
        for (key, value) in &self.env {
            let at = KeyPath::new("env").key(key);
            if key.is_empty() {
                return Err((at, "is an empty variable name; give a name".to_owned()));
            }
            if key.contains('=') {
                return Err((at, "is a variable name containing '='; remove the '='".to_owned()));
            }
            check_no_nul(key).map_err(|m| (at.clone(), format!("is a variable name that {m}")))?;
            check_no_nul(value).map_err(|m| (at, format!("= {value:?} {m}")))?;
        }
        for (i, arg) in self.args.iter().enumerate() {
            check_no_nul(arg).map_err(|m| (KeyPath::new("args").index(i), format!("= {arg:?} {m}")))?;
        }
        self.network.rules()?;
        if let Some(kv) = &self.keyvalue {
            kv.check()?;
        }
        if let Some(messaging) = &self.messaging {
            messaging.check()?;
        }
        let size = postcard::experimental::serialized_size(self).unwrap_or(usize::MAX);
        if size > MAX_CAPABILITIES_BYTES {
            return Err((
                KeyPath::default(),
                format!(
                    "(args, env, dirs and network rules together) take {size} bytes, more than the {MAX_CAPABILITIES_BYTES} bytes \
                     (12 KiB) that fit the message starting a module in its worker (16 KiB); shorten them, or pass \
                     the data in a file under a granted directory"
                ),
            ));
        }
        Ok(())
    }
}
