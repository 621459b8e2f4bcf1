//! cgroup v2 for workers: where the hierarchy is writable and has the
//! memory and pids controllers, each worker gets its own cgroup with
//! `memory.max` and `pids.max`. Where it is not, the caller says so once
//! and relies on rlimits.

use std::io;
use std::path::{Path, PathBuf};

/// The cgroup directory under which worker cgroups are made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupParent {
    dir: PathBuf,
}

/// Why worker cgroups are not available (said once in the log).
#[derive(Debug, thiserror::Error)]
pub enum CgroupUnavailable {
    #[error("no cgroup v2 hierarchy is mounted")]
    NotMounted,
    #[error("this process is in no cgroup v2 group")]
    NoGroup,
    #[error("the {controller} controller is not enabled in {dir} (cgroup.subtree_control)")]
    NoController { controller: &'static str, dir: String },
    #[error("{dir} is not writable: {source}")]
    NotWritable {
        dir: String,
        #[source]
        source: io::Error,
    },
}

impl CgroupParent {
    /// Finds the daemon's own cgroup v2 directory and checks that worker
    /// cgroups with memory and pids limits can be made under it.
    pub fn detect() -> Result<Self, CgroupUnavailable> {
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").map_err(|_| CgroupUnavailable::NotMounted)?;
        let mount = cgroup2_mount(&mounts).ok_or(CgroupUnavailable::NotMounted)?;
        let membership = std::fs::read_to_string("/proc/self/cgroup").map_err(|_| CgroupUnavailable::NoGroup)?;
        let own = unified_path(&membership).ok_or(CgroupUnavailable::NoGroup)?;
        let dir = mount.join(own.trim_start_matches('/'));
        let controllers = std::fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
        for controller in ["memory", "pids"] {
            if !controllers.split_whitespace().any(|c| c == controller) {
                return Err(CgroupUnavailable::NoController {
                    controller,
                    dir: dir.display().to_string(),
                });
            }
        }
        let not_writable = |dir: &Path| {
            let dir = dir.display().to_string();
            move |source| CgroupUnavailable::NotWritable { dir, source }
        };
        // "No internal processes": controllers can be handed to children
        // only from a group with no processes of its own, so the daemon
        // first moves itself into a leaf beside the workers' subtree.
        let enabled = std::fs::read_to_string(dir.join("cgroup.subtree_control")).unwrap_or_default();
        if !["memory", "pids"]
            .iter()
            .all(|c| enabled.split_whitespace().any(|e| e == *c))
        {
            let leaf = dir.join("daemon");
            ensure_dir(&leaf).map_err(not_writable(&leaf))?;
            std::fs::write(leaf.join("cgroup.procs"), "0").map_err(not_writable(&leaf))?;
            std::fs::write(dir.join("cgroup.subtree_control"), "+memory +pids").map_err(not_writable(&dir))?;
        }
        let parent = dir.join("arcella-workers");
        ensure_dir(&parent).map_err(not_writable(&parent))?;
        std::fs::write(parent.join("cgroup.subtree_control"), "+memory +pids").map_err(not_writable(&parent))?;
        Ok(Self { dir: parent })
    }

    /// Makes (or reuses) the cgroup of one group's worker, with its
    /// limits; returns the `cgroup.procs` file the worker joins.
    pub fn worker_group(&self, group: &str, memory: u64, pids: u64) -> io::Result<PathBuf> {
        let dir = self.dir.join(group);
        ensure_dir(&dir)?;
        write(&dir, "memory.max", &memory.to_string())?;
        // No swap: the budget is the budget.
        let _ = write(&dir, "memory.swap.max", "0");
        write(&dir, "pids.max", &pids.to_string())?;
        Ok(dir.join("cgroup.procs"))
    }
}

fn ensure_dir(dir: &Path) -> io::Result<()> {
    match std::fs::create_dir(dir) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(e),
        _ => Ok(()),
    }
}

fn write(dir: &Path, file: &str, value: &str) -> io::Result<()> {
    std::fs::write(dir.join(file), value)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", dir.join(file).display())))
}

/// The mount point of the cgroup2 filesystem, from `/proc/self/mountinfo`.
fn cgroup2_mount(mountinfo: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        let (before, after) = line.split_once(" - ")?;
        let fstype = after.split_whitespace().next()?;
        let mount_point = before.split_whitespace().nth(4)?;
        (fstype == "cgroup2").then(|| PathBuf::from(mount_point))
    })
}

/// The `0::/path` entry of `/proc/self/cgroup`.
fn unified_path(membership: &str) -> Option<&str> {
    membership.lines().find_map(|line| line.strip_prefix("0::"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_unified_mount_and_membership() {
        let mountinfo = "24 30 0:21 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
                         25 30 0:22 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
        assert_eq!(cgroup2_mount(mountinfo), Some(PathBuf::from("/sys/fs/cgroup/unified")));
        assert_eq!(cgroup2_mount("24 30 0:21 / /x rw - cgroup cgroup rw\n"), None);
        assert_eq!(
            unified_path("4:memory:/a\n0::/system.slice/arcella.service\n"),
            Some("/system.slice/arcella.service")
        );
        assert_eq!(unified_path("4:memory:/a\n"), None);
    }
}
