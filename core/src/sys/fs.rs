//! Durable file writes: temp file + fsync + rename + directory fsync.
//!
//! A reader (or a daemon restarted after power loss) sees either the old
//! file or the complete new one, never a torn write.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Prefix of in-flight temp files; [`remove_stale_temps`] clears leftovers
/// of a crash.
pub const TEMP_PREFIX: &str = ".tmp-";

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to `dir/name` atomically and durably.
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<PathBuf> {
    let target = dir.join(name);
    let temp = dir.join(format!(
        "{TEMP_PREFIX}{}-{}-{name}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut file = OpenOptions::new().write(true).create_new(true).open(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&temp, &target)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        // Best effort: a temp file left behind is removed at next start.
        let _ = fs::remove_file(&temp);
    }
    result.map(|()| target)
}

/// Makes a rename or unlink in `dir` durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Creates `dir` (and parents) readable by its owner only.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
}

/// Sets a file's permission bits (the socket's 0600 or 0660).
pub fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

/// Gives `path` to group `gid` (keeping its owner).
pub fn set_group(path: &Path, gid: u32) -> io::Result<()> {
    std::os::unix::fs::chown(path, None, Some(gid))
}

/// Removes a file and makes the removal durable; a missing file is fine.
pub fn remove_durably(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    }
    match path.parent() {
        Some(dir) => sync_dir(dir),
        None => Ok(()),
    }
}

/// Deletes temp files a crash left in `dir`; returns how many.
pub fn remove_stale_temps(dir: &Path) -> io::Result<usize> {
    let mut removed = 0;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
            fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Whether `fd` is an open socket.
pub fn is_socket(fd: std::os::fd::RawFd) -> bool {
    let mut stat = std::mem::MaybeUninit::<nix::libc::stat>::uninit();
    // SAFETY: fstat writes a `stat` into the buffer we own, or fails (EBADF
    // for a descriptor that is not open) and writes nothing we read.
    let ok = unsafe { nix::libc::fstat(fd, stat.as_mut_ptr()) } == 0;
    // SAFETY: fstat succeeded, so it initialised the buffer.
    ok && (unsafe { stat.assume_init() }.st_mode & nix::libc::S_IFMT) == nix::libc::S_IFSOCK
}

/// A file's identity (device, inode), to tell whether a path still names
/// the file it did.
pub fn file_id(path: &Path) -> io::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let meta = fs::symlink_metadata(path)?;
    Ok((meta.dev(), meta.ino()))
}

/// A path-only descriptor of the directory `dir` (`O_PATH`): it grants no
/// reading by itself, and lets a process that cannot reach `dir` by name
/// (a walled worker) be given rules about what lies beneath it.
pub fn open_dir_path(dir: &Path) -> io::Result<std::os::fd::OwnedFd> {
    use nix::fcntl::OFlag;
    nix::fcntl::open(
        dir,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(io::Error::from)
}

/// Bytes the files under `dir` take (their lengths; a sparse upload
/// counts at its full announced size, which is what it will need).
pub fn tree_size(dir: &Path) -> io::Result<u64> {
    let mut total = 0;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            total += tree_size(&entry.path())?;
        } else if kind.is_file() {
            total += entry.metadata()?.len();
        }
    }
    Ok(total)
}

/// Bytes an unprivileged writer may still put on the file system holding
/// `path`.
#[allow(clippy::useless_conversion, reason = "both are 32-bit on armv7")]
pub fn free_space(path: &Path) -> io::Result<u64> {
    let stat = nix::sys::statvfs::statvfs(path).map_err(io::Error::from)?;
    Ok(u64::from(stat.blocks_available()).saturating_mul(u64::from(stat.fragment_size())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_replace_whole_files_and_leave_no_temps() {
        let dir = tempfile::tempdir().unwrap();
        write_atomic(dir.path(), "a", b"first").unwrap();
        write_atomic(dir.path(), "a", b"second").unwrap();
        assert_eq!(fs::read(dir.path().join("a")).unwrap(), b"second");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn stale_temps_are_cleared() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(format!("{TEMP_PREFIX}9-9-x")), b"torn").unwrap();
        fs::write(dir.path().join("keep"), b"k").unwrap();
        assert_eq!(remove_stale_temps(dir.path()).unwrap(), 1);
        assert!(dir.path().join("keep").exists());
    }

    #[test]
    fn a_failed_write_names_the_error_and_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        write_atomic(dir.path(), "a", b"old").unwrap();
        let missing = dir.path().join("no-such-dir");
        assert!(write_atomic(&missing, "a", b"new").is_err());
        assert_eq!(fs::read(dir.path().join("a")).unwrap(), b"old");
    }
}
