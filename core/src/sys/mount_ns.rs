//! A file system view of the process's own: a new user and mount
//! namespace whose root is a small tmpfs holding only the paths it is
//! given, bind-mounted at their own paths. Whatever is not bound there
//! does not exist for the process (`ENOENT`), however its uid could reach
//! it before. Workers use it where the kernel has no Landlock.
//!
//! The process is not root, so it needs the user namespace to be allowed
//! to mount; the kernel gives one only to a single-threaded caller, and
//! not at all where unprivileged user namespaces are off
//! (`user.max_user_namespaces = 0`, some distributions' sysctls).
//!
//! Order: [`enter`] (unshare, map the ids, make every mount private, put
//! a tmpfs over `/proc`, where the new root is built), [`NewRoot::bind`]
//! for each path, [`NewRoot::pivot`] (the tmpfs becomes `/`, the old root
//! is detached, the tmpfs is made read-only).

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, unshare};
use nix::sys::statvfs::{FsFlags, statvfs};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Component, Path, PathBuf};

/// Where the new root is built before it becomes `/`: every Linux has
/// `/proc`, no grant lies beneath it, and the new root must not show it.
const BUILD_AT: &str = "/proc";

/// The tmpfs holds only directories and empty files (mount points).
const TMPFS_OPTIONS: &str = "mode=0755,size=64k";

/// Why the process has no mount namespace of its own.
#[derive(Debug, thiserror::Error)]
pub enum MountNsError {
    /// The kernel gives no user and mount namespace to this process:
    /// unprivileged user namespaces are off or used up, or it has threads.
    #[error("unshare(CLONE_NEWUSER | CLONE_NEWNS): {0}")]
    Refused(Errno),
    /// A step after the unshare failed; the process is in namespaces of
    /// its own but still sees the whole file system.
    #[error("{step}: {source}")]
    Step {
        step: String,
        #[source]
        source: io::Error,
    },
    /// The process could not be made non-dumpable again after writing its
    /// id maps: it must not go on.
    #[error("cannot make the process non-dumpable again (prctl PR_SET_DUMPABLE): {0}")]
    Dumpable(#[source] io::Error),
}

fn step(step: impl Into<String>) -> impl FnOnce(Errno) -> MountNsError {
    let step = step.into();
    move |errno| MountNsError::Step {
        step,
        source: io::Error::from(errno),
    }
}

fn io_step(step: impl Into<String>) -> impl FnOnce(io::Error) -> MountNsError {
    let step = step.into();
    move |source| MountNsError::Step { step, source }
}

/// The new root while it is being built (under [`BUILD_AT`]).
#[derive(Debug)]
pub struct NewRoot {
    root: PathBuf,
    /// This namespace's `/proc/self/mountinfo`, opened before the tmpfs
    /// hid `/proc`: it lists the mounts a recursive bind brought along.
    mountinfo: File,
}

/// Moves the calling (single-threaded) process into a new user and mount
/// namespace where it keeps its own uid and gid, makes every mount
/// private (nothing done here reaches the rest of the system) and mounts
/// the tmpfs the new root is built on.
pub fn enter() -> Result<NewRoot, MountNsError> {
    let uid = nix::unistd::getuid().as_raw();
    let gid = nix::unistd::getgid().as_raw();
    unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS).map_err(MountNsError::Refused)?;
    map_ids(uid, gid)?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(step("make / private (mount MS_REC | MS_PRIVATE)"))?;
    let mountinfo = File::open("/proc/self/mountinfo").map_err(io_step("open /proc/self/mountinfo"))?;
    mount(
        Some("tmpfs"),
        BUILD_AT,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some(TMPFS_OPTIONS),
    )
    .map_err(step(format!("mount a tmpfs on {BUILD_AT}")))?;
    Ok(NewRoot {
        root: PathBuf::from(BUILD_AT),
        mountinfo,
    })
}

/// Maps the process's own uid and gid to themselves in its new user
/// namespace (and denies `setgroups`, which an unprivileged gid map needs).
///
/// The `/proc/self` files of a non-dumpable process belong to root, who
/// has no id in the new namespace, so the process could not write its own
/// maps: it is dumpable for these three writes, then not again. It has
/// loaded no guest yet; the only processes of its uid that could attach
/// meanwhile are the daemon (under the packaged unit) and other workers,
/// whose seccomp filters kill them on `ptrace`.
fn map_ids(uid: u32, gid: u32) -> Result<(), MountNsError> {
    nix::sys::prctl::set_dumpable(true).map_err(step("prctl PR_SET_DUMPABLE 1"))?;
    let written = [
        ("/proc/self/setgroups", "deny".to_owned()),
        ("/proc/self/uid_map", format!("{uid} {uid} 1\n")),
        ("/proc/self/gid_map", format!("{gid} {gid} 1\n")),
    ]
    .into_iter()
    .try_for_each(|(file, text)| std::fs::write(file, text).map_err(io_step(format!("write {file}"))));
    nix::sys::prctl::set_dumpable(false).map_err(|e| MountNsError::Dumpable(e.into()))?;
    written
}

impl NewRoot {
    /// Binds `path` (a directory or a file) at the same path in the new
    /// root, with everything mounted beneath it; read-only unless
    /// `writable` (and then its submounts too), never set-uid, devices or
    /// exec. `Ok(false)` if there is nothing at `path` this process can
    /// reach; a path that is not absolute and plain (`..`) is an error.
    pub fn bind(&mut self, path: &Path, writable: bool) -> Result<bool, MountNsError> {
        let shown = path.display();
        let Some(target) = self.inside(path) else {
            return Err(MountNsError::Step {
                step: format!("bind {shown}"),
                source: io::Error::new(io::ErrorKind::InvalidInput, "not an absolute path without `.` or `..`"),
            });
        };
        let Ok(meta) = std::fs::metadata(path) else {
            return Ok(false);
        };
        let made = if meta.is_dir() {
            std::fs::create_dir_all(&target)
        } else {
            target
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| File::create(&target).map(drop))
        };
        made.map_err(io_step(format!("make the mount point for {shown}")))?;
        mount(
            Some(path),
            &target,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(step(format!("bind {shown}")))?;
        for mount_point in std::iter::once(target.clone()).chain(self.mounts_beneath(&target)?) {
            restrict(&mount_point, writable).map_err(step(format!("remount {}", mount_point.display())))?;
        }
        Ok(true)
    }

    /// Makes the new root `/`, detaches the old one and makes the tmpfs
    /// read-only. From here on the process sees only what was bound.
    pub fn pivot(self) -> Result<(), MountNsError> {
        nix::unistd::chdir(&self.root).map_err(step(format!("chdir {}", self.root.display())))?;
        // pivot_root(2)'s own recipe: the old root is stacked on the new
        // one, then detached, with no directory needed to park it in.
        nix::unistd::pivot_root(".", ".").map_err(step("pivot_root"))?;
        umount2(".", MntFlags::MNT_DETACH).map_err(step("detach the old root (umount2 MNT_DETACH)"))?;
        nix::unistd::chdir("/").map_err(step("chdir /"))?;
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REMOUNT
                | MsFlags::MS_BIND
                | MsFlags::MS_RDONLY
                | MsFlags::MS_NOSUID
                | MsFlags::MS_NODEV
                | MsFlags::MS_NOEXEC,
            None::<&str>,
        )
        .map_err(step("remount the new root read-only"))
    }

    /// `path` under the new root, if it is absolute and plain.
    fn inside(&self, path: &Path) -> Option<PathBuf> {
        let mut components = path.components();
        if components.next() != Some(Component::RootDir) {
            return None;
        }
        let mut inside = self.root.clone();
        for component in components {
            match component {
                Component::Normal(name) => inside.push(name),
                _ => return None,
            }
        }
        Some(inside)
    }

    /// The mount points strictly beneath `target` (those a recursive bind
    /// brought along), from this namespace's mount table.
    fn mounts_beneath(&self, target: &Path) -> Result<Vec<PathBuf>, MountNsError> {
        let text = read_all(&self.mountinfo).map_err(io_step("read /proc/self/mountinfo"))?;
        Ok(text
            .lines()
            .filter_map(|line| line.split(' ').nth(4))
            .map(|field| PathBuf::from(unescape(field)))
            .filter(|point| point != target && point.starts_with(target))
            .collect())
    }
}

/// Remounts the bind at `mount_point` read-only unless `writable`, and
/// nosuid, nodev, noexec. Flags the kernel locked on the original mount
/// (read-only; its atime flags, which a remount keeps unless told) stay.
fn restrict(mount_point: &Path, writable: bool) -> Result<(), Errno> {
    let mut flags =
        MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    if !writable || statvfs(mount_point)?.flags().contains(FsFlags::ST_RDONLY) {
        flags |= MsFlags::MS_RDONLY;
    }
    mount(None::<&str>, mount_point, None::<&str>, flags, None::<&str>)
}

/// procfs regenerates the text at each read from offset 0.
fn read_all(file: &File) -> io::Result<String> {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = file.read_at(&mut chunk, bytes.len() as u64)?;
        if n == 0 {
            return Ok(String::from_utf8_lossy(&bytes).into_owned());
        }
        bytes.extend_from_slice(&chunk[..n]);
    }
}

/// Undoes mountinfo's octal escapes (`\040` for a space, …).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match (bytes[i], octal) {
            (b'\\', Some(digits)) => {
                out.push(digits.iter().fold(0u8, |n, d| n.wrapping_mul(8).wrapping_add(d - b'0')));
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape(r"/srv/my\040data"), "/srv/my data");
        assert_eq!(unescape(r"/a\134b\011c"), "/a\\b\tc");
        assert_eq!(unescape(r"/plain\04"), r"/plain\04");
    }

    #[test]
    fn only_plain_absolute_paths_go_into_the_new_root() {
        let root = NewRoot {
            root: PathBuf::from(BUILD_AT),
            mountinfo: File::open("/dev/null").unwrap(),
        };
        assert_eq!(root.inside(Path::new("/srv/a")), Some(PathBuf::from("/proc/srv/a")));
        assert_eq!(root.inside(Path::new("/srv/../etc")), None);
        assert_eq!(root.inside(Path::new("srv/a")), None);
        assert_eq!(root.inside(Path::new("/srv/./a")), Some(PathBuf::from("/proc/srv/a")));
    }
}
