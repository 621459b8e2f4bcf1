//! Space kept back on the data directory's file system for the daemon's
//! own records. A guest with a read-write grant on the same file system
//! can fill it; without the reserve even `stop` then failed ("saving the
//! module record: No space left on device"). A write that fails for want
//! of space gives the reserve back and is tried once more; the reserve is
//! taken again at the next write that finds room.

use std::io;
use std::path::{Path, PathBuf};

/// The reserve's file under the data directory.
pub const FILE: &str = "reserve";

/// Bytes kept back: a few hundred module records and their directory
/// entries, whatever the file system's block size.
pub const SIZE: u64 = 1 << 20;

/// The reserve of one data directory.
#[derive(Debug, Clone)]
pub struct DiskReserve {
    path: PathBuf,
}

impl DiskReserve {
    pub fn at(data_dir: &Path) -> Self {
        Self {
            path: data_dir.join(FILE),
        }
    }

    /// Takes the reserve if it is not held and the space is there; says
    /// whether it is held now.
    pub fn keep(&self) -> bool {
        if std::fs::metadata(&self.path).is_ok_and(|m| m.len() == SIZE) {
            return true;
        }
        let taken = (|| {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(&self.path)?;
            // Real blocks, not a sparse file: the space must be there to give back.
            nix::fcntl::posix_fallocate(&file, 0, SIZE as nix::libc::off_t).map_err(io::Error::from)
        })();
        if taken.is_err() {
            let _ = std::fs::remove_file(&self.path);
        }
        taken.is_ok()
    }

    /// Bytes the reserve holds now (0 once given back).
    pub fn held(&self) -> u64 {
        std::fs::metadata(&self.path).map_or(0, |m| m.len())
    }

    /// Gives the space back; whether there was any to give.
    pub fn release(&self) -> bool {
        std::fs::remove_file(&self.path).is_ok()
    }

    /// Runs `write`; if it fails for want of space, gives the reserve back
    /// and runs it once more.
    pub fn write_with<T>(&self, what: &str, write: impl Fn() -> io::Result<T>) -> io::Result<T> {
        self.keep();
        match write() {
            Err(e) if is_out_of_space(&e) && self.release() => {
                log::warn!(
                    "the data directory's file system is full: {what} used the daemon's reserve of {} KiB; \
                     free space (a module with a read-write grant there may have filled it)",
                    SIZE / 1024
                );
                write()
            }
            other => other,
        }
    }
}

fn is_out_of_space(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(nix::libc::ENOSPC | nix::libc::EDQUOT))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reserve_is_real_space_taken_and_given_back() {
        let dir = tempfile::tempdir().unwrap();
        let reserve = DiskReserve::at(dir.path());
        assert!(reserve.keep());
        let meta = std::fs::metadata(dir.path().join(FILE)).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert!(meta.blocks() * 512 >= SIZE, "a sparse reserve holds no space");
        assert!(reserve.release());
        assert!(!reserve.release());
        let tried = std::cell::Cell::new(0);
        let out = reserve.write_with("a test", || {
            tried.set(tried.get() + 1);
            Ok::<_, io::Error>(tried.get())
        });
        assert_eq!(out.unwrap(), 1, "a write that succeeds runs once");
        let out = reserve.write_with("a test", || {
            tried.set(tried.get() + 1);
            if tried.get() == 2 {
                Err(io::Error::from_raw_os_error(nix::libc::ENOSPC))
            } else {
                Ok(tried.get())
            }
        });
        assert_eq!(
            out.unwrap(),
            3,
            "out of space: the reserve is given back and the write retried"
        );
    }
}
