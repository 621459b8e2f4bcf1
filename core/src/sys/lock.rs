//! An exclusive lock on a directory, held for a process's lifetime:
//! `flock(2)` on a `lock` file inside it, which also records the holder's
//! pid for the error a second process gets. The kernel drops the lock when
//! the holder exits, however it exits (SIGKILL, power loss), so a stale
//! lock file never keeps anyone out.

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Name of the lock file inside the locked directory.
pub const LOCK_FILE: &str = "lock";

/// Why a directory could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds the lock (its pid, if it wrote one).
    #[error("{}", held_message(.path, *.pid))]
    Held { path: PathBuf, pid: Option<u32> },
    #[error("cannot lock {}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn held_message(path: &Path, pid: Option<u32>) -> String {
    let holder = pid.map_or_else(|| "another process".to_owned(), |pid| format!("process {pid}"));
    format!("{} is locked by {holder}", path.display())
}

/// The lock; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct DirLock {
    _file: Flock<File>,
}

impl DirLock {
    /// Takes the lock on `dir` without waiting, and records this process's
    /// pid in it.
    pub fn acquire(dir: &Path) -> Result<Self, LockError> {
        let path = dir.join(LOCK_FILE);
        let io_err = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        // Opened in place, never replaced by a rename (`fs::write_atomic`):
        // the lock belongs to this inode, and a new one would be unlocked.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(io_err)?;
        let file = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(file) => file,
            Err((file, Errno::EWOULDBLOCK)) => {
                return Err(LockError::Held {
                    pid: holder(&file),
                    path,
                });
            }
            Err((_, errno)) => return Err(io_err(io::Error::from(errno))),
        };
        // The pid is only a hint for the error above: a torn or stale one
        // costs nothing but a vaguer message.
        file.set_len(0).map_err(io_err)?;
        file.write_all_at(format!("{}\n", std::process::id()).as_bytes(), 0)
            .map_err(io_err)?;
        Ok(Self { _file: file })
    }
}

/// The pid the holder wrote, if readable.
fn holder(file: &File) -> Option<u32> {
    let mut buf = [0u8; 16];
    let n = file.read_at(&mut buf, 0).ok()?;
    std::str::from_utf8(&buf[..n]).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_a_directory_is_refused_and_names_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let first = DirLock::acquire(dir.path()).unwrap();
        // flock locks belong to the open file, so a second open in the same
        // process conflicts just as another process would.
        let err = DirLock::acquire(dir.path()).unwrap_err();
        assert!(
            matches!(&err, LockError::Held { pid: Some(pid), .. } if *pid == std::process::id()),
            "{err:?}"
        );
        assert!(
            err.to_string().contains(&format!("process {}", std::process::id())),
            "{err}"
        );
        drop(first);
        DirLock::acquire(dir.path()).unwrap();
    }
}
