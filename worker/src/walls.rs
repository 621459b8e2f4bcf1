//! The worker's filesystem walls: a Landlock ruleset that lets the process
//! open files only beneath the directories its instances were granted, or,
//! where the kernel has no Landlock, a mount namespace holding only those
//! directories (`mount_walls.rs`); `[workers] filesystem_walls` picks.
//!
//! [`install`] runs once, in the handshake, before seccomp (Landlock needs
//! system calls the allowlist forbids) and before any guest is loaded. From
//! then on, even code that escaped wasmtime cannot open `/proc/<pid>/mem`
//! of another process, the daemon's data directory, another group's grants
//! or anything else outside [`Walls`]; the code files it runs arrive as
//! descriptors, which Landlock does not recheck. Landlock also keeps the
//! worker from signalling processes outside its walls and from connecting
//! to abstract Unix sockets (kernels with Landlock ABI 6, Linux 6.12+).
//!
//! Landlock needs Linux 5.13 and `landlock` among the kernel's LSMs; a
//! mount namespace needs unprivileged user namespaces. Where neither is
//! had, [`install`] says so and the worker relies on its other walls (its
//! uid, non-dumpable, seccomp): docs/security.md.

use arcella_core::protocol::worker::{FilesystemWalls, Walls};
use arcella_core::sys::mount_ns::MountNsError;
use landlock::{
    ABI, Access, AccessFs, CompatLevel, Compatible, PathBeneath, PathFd, RestrictionStatus, Ruleset, RulesetAttr,
    RulesetCreatedAttr, RulesetStatus, Scope,
};
use std::os::fd::OwnedFd;

/// The newest Landlock ABI this worker asks for; older kernels get what
/// they support of it (best effort), reported by [`install`].
const ABI_WANTED: ABI = ABI::V6;

/// What a worker with network rules may read for name resolution.
pub(crate) const RESOLVER_FILES: &[&str] = &[
    "/etc/hosts",
    "/etc/resolv.conf",
    "/etc/nsswitch.conf",
    "/etc/host.conf",
    "/etc/gai.conf",
];

/// Why the walls could not be raised. The worker then refuses to serve.
#[derive(Debug, thiserror::Error)]
pub enum WallsError {
    #[error("cannot build the Landlock ruleset: {0}")]
    Ruleset(#[from] landlock::RulesetError),
    #[error("{0}")]
    MountNamespace(MountNsError),
}

/// Walls the process in as `walls.kind` says. Returns what was done, in
/// words: "… walls up: …", or why there are none.
/// `code_dir` is the group's code directory from the daemon, which
/// Landlock walls let the worker read beneath (a mount namespace has no
/// `/proc` to reach its files through, so there it is not needed).
pub fn install(walls: &Walls, code_dir: Option<OwnedFd>) -> Result<String, WallsError> {
    match walls.kind {
        FilesystemWalls::Landlock => landlock(walls, code_dir),
        FilesystemWalls::MountNamespace => mount_namespace(walls, "workers.filesystem_walls = \"mount-namespace\""),
        FilesystemWalls::Auto => match landlock(walls, code_dir)? {
            up if up.contains("walls up") => Ok(up),
            _ => mount_namespace(walls, "Landlock is not available in this kernel"),
        },
    }
}

/// The mount-namespace walls; `instead` says why not Landlock.
fn mount_namespace(walls: &Walls, instead: &str) -> Result<String, WallsError> {
    match crate::mount_walls::install(walls) {
        Ok(up) => Ok(up),
        Err(e @ MountNsError::Dumpable(_)) => Err(WallsError::MountNamespace(e)),
        Err(e @ MountNsError::Refused(_)) => Ok(format!(
            "no filesystem walls: {instead} and a mount namespace was refused ({e}); \
             the worker relies on its uid, being non-dumpable and seccomp"
        )),
        Err(e) => Ok(format!(
            "no filesystem walls: {instead} and a mount namespace could not be built ({e}); \
             the worker relies on its uid, being non-dumpable and seccomp"
        )),
    }
}

/// Walls the process in with Landlock (all of its threads: it is still
/// single-threaded but for the runtime's helpers, which Landlock covers
/// through `LANDLOCK_RESTRICT_SELF_TSYNC` where the kernel has it, else
/// they hold no path access of their own). Returns what was done, in words.
fn landlock(walls: &Walls, code_dir: Option<OwnedFd>) -> Result<String, WallsError> {
    let read = AccessFs::from_read(ABI_WANTED);
    let all = AccessFs::from_all(ABI_WANTED);
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(all)?
        .scope(Scope::from_all(ABI_WANTED))?
        .create()?;
    let mut missing = Vec::new();
    for dir in &walls.dirs {
        match PathFd::new(&dir.path) {
            Ok(fd) => {
                let access = if dir.writable { all } else { read };
                ruleset = ruleset.add_rule(PathBeneath::new(fd, access))?;
            }
            // The instance that needs it will fail to open it, and say so.
            Err(_) => missing.push(dir.path.display().to_string()),
        }
    }
    if let Some(code_dir) = code_dir {
        // Its code files, read by wasmtime through /proc/self/fd.
        ruleset = ruleset.add_rule(PathBeneath::new(code_dir, AccessFs::ReadFile))?;
    }
    if walls.network {
        // The name resolver (glibc's getaddrinfo, for `lookup = true` and
        // name rules) reads its configuration; nothing else of /etc.
        for file in RESOLVER_FILES {
            if let Ok(fd) = PathFd::new(file) {
                ruleset = ruleset.add_rule(PathBeneath::new(fd, AccessFs::ReadFile))?;
            }
        }
    }
    let status: RestrictionStatus = ruleset.restrict_self()?;
    let opened = walls.dirs.len() - missing.len();
    let missing = if missing.is_empty() {
        String::new()
    } else {
        format!(" ({} missing: {})", missing.len(), missing.join(", "))
    };
    Ok(match status.ruleset {
        RulesetStatus::FullyEnforced => format!("Landlock walls up: {opened} granted director(ies){missing}"),
        RulesetStatus::PartiallyEnforced => {
            format!("Landlock walls up (this kernel's ABI lacks some rights): {opened} granted director(ies){missing}")
        }
        RulesetStatus::NotEnforced => {
            "Landlock is not available in this kernel: no filesystem walls; the worker relies on its uid, \
             being non-dumpable and seccomp"
                .to_owned()
        }
    })
}
