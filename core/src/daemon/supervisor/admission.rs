//! Admission control: an install or update is accepted only if it fits
//! this device — disk (the data directory's quota and the file system's
//! free space), memory budgets (the worker group's, the device's), and
//! the capability policy. A refusal names the budget and the figure that
//! broke it, and is made before anything installed changes.

use super::Supervisor;
use crate::manifest::DeploymentManifest;
use crate::protocol::{ErrorKind, Isolation, RemoteError};
use crate::units::format_bytes;

/// `limits.memory` of an in-process module whose deployment and
/// `[module_defaults]` set none: a trusted module always has a limit, since
/// its memory is the daemon's (what broke: one without grew the daemon to
/// 830 MB and hung it, again at every restart).
pub const DEFAULT_IN_PROCESS_MEMORY: u64 = 64 << 20;

/// The memory limit a module runs under: its own, else `[module_defaults]`,
/// else, in-process, [`DEFAULT_IN_PROCESS_MEMORY`]; a worker module without
/// one is bounded by its group's budget.
pub(super) fn memory_limit(deployment: &DeploymentManifest, defaults: &crate::board::ModuleDefaults) -> Option<u64> {
    let in_process = deployment.isolation == Isolation::Main;
    deployment
        .limits
        .memory
        .or(defaults.memory)
        .or(in_process.then_some(DEFAULT_IN_PROCESS_MEMORY))
}

/// The memory a module may hold at once: its limit per instance, times
/// the instances serving its HTTP requests at once (`[http] instances`)
/// or a provider's calls (`[provider] instances`).
fn declared_memory(deployment: &DeploymentManifest, defaults: &crate::board::ModuleDefaults) -> Option<u64> {
    let instances = match (&deployment.http, deployment.kind) {
        (Some(http), _) => u64::from(http.instances),
        (None, crate::protocol::ModuleKind::Provider) => u64::from(deployment.provider.instances),
        (None, _) => 1,
    };
    memory_limit(deployment, defaults).map(|per_instance| per_instance.saturating_mul(instances))
}

/// Descriptors the daemon keeps for itself (management connections, the
/// store, MQTT, a link and a pipe per worker): in-process guests may have
/// only what is left of its open-file limit (what broke: a trusted module
/// that opened files took them all and locked the operator out).
pub const DAEMON_DESCRIPTORS: u64 = 256;

fn refused(message: String) -> RemoteError {
    RemoteError::new(ErrorKind::ResourceExhausted, message)
}

impl Supervisor {
    /// Room for `bytes` more in the data directory, for `what`.
    pub(super) fn admit_disk(&self, bytes: u64, what: &str) -> Result<(), RemoteError> {
        let dir = &self.inner.config.data_dir;
        if let Some(quota) = self.inner.config.disk_quota {
            // The daemon's own reserve is not the modules' use.
            let used = crate::sys::fs::tree_size(dir)
                .map_err(|e| super::internal("measuring the data directory", e))?
                .saturating_sub(crate::sys::reserve::DiskReserve::at(dir).held());
            let left = quota.saturating_sub(used);
            if bytes > left {
                return Err(refused(format!(
                    "{what} needs {} but the data directory has {} of its {} quota left (disk_quota; {} in use); \
                     remove modules or run `arcella gc`",
                    format_bytes(bytes),
                    format_bytes(left),
                    format_bytes(quota),
                    format_bytes(used)
                )));
            }
        }
        let free = crate::sys::fs::free_space(dir).map_err(|e| super::internal("measuring free disk space", e))?;
        if bytes > free {
            return Err(refused(format!(
                "{what} needs {} but the file system holding {} has {} free",
                format_bytes(bytes),
                dir.display(),
                format_bytes(free)
            )));
        }
        Ok(())
    }

    /// One more module in the daemon's process fits its open-file limit:
    /// each may hold `MAX_HOST_HANDLES`, and `DAEMON_DESCRIPTORS` stay the
    /// daemon's.
    fn admit_descriptors(&self, id: &str) -> Result<(), RemoteError> {
        let per_module = crate::run::MAX_HOST_HANDLES as u64;
        let limit = crate::sys::files::open_files_limit();
        let room = limit.saturating_sub(DAEMON_DESCRIPTORS) / per_module;
        let others = self
            .lock()
            .modules
            .iter()
            .filter(|(other, _)| other.as_str() != id)
            .filter(|(_, slot)| {
                slot.loaded
                    .as_ref()
                    .is_some_and(|l| l.manifests.deployment.isolation == Isolation::Main)
            })
            .count() as u64;
        if others + 1 > room {
            return Err(refused(format!(
                "deployment.toml: isolation = \"main\": the daemon's open-file limit of {limit} leaves room for \
                 {room} module(s) in its process ({per_module} host handles each, {DAEMON_DESCRIPTORS} kept for \
                 the daemon) and {others} are installed; raise the limit (LimitNOFILE= in the unit) or deploy it \
                 with isolation = \"worker\""
            )));
        }
        Ok(())
    }

    /// An upload of `total_len` bytes may begin.
    pub fn admit_upload(&self, total_len: u64) -> Result<(), RemoteError> {
        self.admit_disk(total_len, &format!("the upload of {}", format_bytes(total_len)))
    }

    /// No other module serves HTTP on the address `deployment` asks for
    /// (the same port on the same address, or on the unspecified address
    /// of its family): the second would fail to listen at every start.
    fn admit_http_address(&self, id: &str, deployment: &DeploymentManifest) -> Result<(), RemoteError> {
        let Some(wanted) = deployment.http.as_ref().and_then(|h| h.grant().ok()).map(|g| g.listen) else {
            return Ok(());
        };
        let clash = |other: std::net::SocketAddr| {
            other.port() == wanted.port()
                && other.is_ipv4() == wanted.is_ipv4()
                && (other.ip() == wanted.ip() || other.ip().is_unspecified() || wanted.ip().is_unspecified())
        };
        let state = self.lock();
        let taken = state.modules.iter().find(|(other, slot)| {
            other.as_str() != id
                && slot
                    .loaded
                    .as_ref()
                    .and_then(|l| l.manifests.deployment.http.as_ref())
                    .and_then(|h| h.grant().ok())
                    .is_some_and(|g| clash(g.listen))
        });
        match taken {
            Some((other, _)) => Err(RemoteError::new(
                ErrorKind::AlreadyExists,
                format!(
                    "deployment.toml: http.listen = \"{wanted}\" is already served by module `{other}`; give \
                     another port, or remove `{other}` first"
                ),
            )),
            None => Ok(()),
        }
    }

    /// The deployment of module `id` fits the memory budgets and the policy.
    pub(super) fn admit_deployment(&self, id: &str, deployment: &DeploymentManifest) -> Result<(), RemoteError> {
        let config = &self.inner.config;
        if deployment.trusted && !config.policy.allow_trusted {
            return Err(RemoteError::new(
                ErrorKind::PermissionDenied,
                "deployment.toml: trusted = true is not allowed on this device (policy.allow_trusted = false); \
                 deploy it as an untrusted worker module"
                    .to_owned(),
            ));
        }
        if !config.policy.dirs.is_empty() {
            for dir in &deployment.capabilities.dirs {
                if !config.policy.dirs.iter().any(|allowed| dir.host.starts_with(allowed)) {
                    let allowed: Vec<String> = config.policy.dirs.iter().map(|d| d.display().to_string()).collect();
                    return Err(RemoteError::new(
                        ErrorKind::PermissionDenied,
                        format!(
                            "deployment.toml: capabilities.dirs: {} is outside the directories this device grants \
                             (policy.dirs = [{}])",
                            dir.host.display(),
                            allowed.join(", ")
                        ),
                    ));
                }
            }
        }
        if deployment.isolation == Isolation::Main {
            self.admit_descriptors(id)?;
        }
        self.admit_http_address(id, deployment)?;
        let declared = declared_memory(deployment, &config.module_defaults);
        let what = if deployment.http.as_ref().is_some_and(|h| h.instances > 1) {
            "limits.memory × [http] instances"
        } else if deployment.kind == crate::protocol::ModuleKind::Provider && deployment.provider.instances > 1 {
            "limits.memory × [provider] instances"
        } else {
            "limits.memory"
        };
        if deployment.isolation == Isolation::Worker
            && let Some(memory) = declared
        {
            let budget = config.workers.limits_for(&deployment.group).memory;
            if memory > budget {
                return Err(refused(format!(
                    "deployment.toml: {what} = {} exceeds the {} memory budget of worker group `{}` \
                     (workers.memory or [workers.groups.{}])",
                    format_bytes(memory),
                    format_bytes(budget),
                    deployment.group,
                    deployment.group
                )));
            }
        }
        if let (Some(budget), Some(memory)) = (config.memory_budget, declared) {
            let others: u64 = self
                .lock()
                .modules
                .iter()
                .filter(|(other, _)| other.as_str() != id)
                .filter_map(|(_, slot)| {
                    declared_memory(&slot.loaded.as_ref()?.manifests.deployment, &config.module_defaults)
                })
                .sum();
            if others + memory > budget {
                return Err(refused(format!(
                    "deployment.toml: {what} = {} would bring the memory declared by all modules to {}, \
                     above this device's memory_budget of {} ({} declared by the others)",
                    format_bytes(memory),
                    format_bytes(others + memory),
                    format_bytes(budget),
                    format_bytes(others)
                )));
            }
        }
        Ok(())
    }
}
