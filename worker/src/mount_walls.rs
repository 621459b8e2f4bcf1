//! The worker's filesystem walls where Landlock is missing (or where
//! `[workers] filesystem_walls = "mount-namespace"`): a user and mount
//! namespace of its own whose root holds only its granted directories
//! (read-only ones read-only) and, for a worker with network rules, the
//! resolver's files. Nothing else exists in that view: not `/proc`, not
//! the data directory, not another group's grants, not `/dev` (a path
//! there is `ENOENT`). The code files it runs arrive as descriptors and
//! its `statm` was opened before, so neither needs a path.
//!
//! Like Landlock, this goes up in the handshake while the worker is one
//! thread (the kernel requires it for a new user namespace), before
//! seccomp (which forbids `unshare`, `mount` and `pivot_root`, so code
//! that escaped wasmtime cannot undo it).

use crate::walls::RESOLVER_FILES;
use arcella_core::protocol::worker::Walls;
use arcella_core::sys::mount_ns::{self, MountNsError};
use std::path::Path;

/// What was built, in words, for the daemon's log.
pub fn install(walls: &Walls) -> Result<String, MountNsError> {
    let mut root = mount_ns::enter()?;
    // Parents before children: a child's mount point is then the real
    // directory inside its parent's bind, and its bind goes over it.
    let mut dirs: Vec<_> = walls.dirs.iter().collect();
    dirs.sort_by_key(|dir| dir.path.components().count());
    let mut missing = Vec::new();
    for dir in dirs {
        if !root.bind(&dir.path, dir.writable)? {
            // The instance that needs it will fail to open it, and say so.
            missing.push(dir.path.display().to_string());
        }
    }
    if walls.network {
        // The name resolver (glibc's getaddrinfo, for `lookup = true` and
        // name rules) reads its configuration; nothing else of /etc.
        for file in RESOLVER_FILES {
            root.bind(Path::new(file), false)?;
        }
    }
    root.pivot()?;
    let opened = walls.dirs.len() - missing.len();
    let missing = if missing.is_empty() {
        String::new()
    } else {
        format!(" ({} missing: {})", missing.len(), missing.join(", "))
    };
    Ok(format!(
        "mount-namespace walls up: {opened} granted director(ies){missing}, nothing else of the file system"
    ))
}
