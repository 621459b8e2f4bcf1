//! Each worker group's window onto the store: `artifacts/groups/<group>/`
//! holds hard links to the code files the group's instances run.
//!
//! A worker gets its code as a descriptor, and its walls keep it out of
//! the store. To share a component's code *and* its memory images with
//! the other workers running it, wasmtime must open the file itself
//! (`Component::deserialize_file`: only then are the images the file's
//! pages instead of a private copy), which a walled worker can do through
//! `/proc/self/fd/N` if its Landlock rules let it read the file. So the
//! daemon opens the code through a link in the group's directory, and the
//! worker's walls let it read beneath that directory (passed as a
//! descriptor in its Hello: the data directory itself stays closed to its
//! uid). A link is a name, not a copy: the bytes exist once on disk.
//!
//! Links go with their artifact ([`GroupLinks::unlink_everywhere`], called
//! by the store's `remove`), so a removed artifact's space is freed;
//! [`GroupLinks::remove_stale`] clears what a crash in between left.

use crate::sys::fs as sysfs;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// The directory of every group's links: `artifacts/groups`.
#[derive(Debug, Clone)]
pub struct GroupLinks {
    dir: PathBuf,
}

impl GroupLinks {
    pub fn in_store(store_dir: &Path) -> Self {
        Self {
            dir: store_dir.join("groups"),
        }
    }

    /// The directory of `group`'s links, created if missing (private to
    /// the daemon's user: workers reach it only through a descriptor).
    pub fn group_dir(&self, group: &str) -> io::Result<PathBuf> {
        let dir = self.dir.join(group);
        sysfs::create_private_dir(&dir)?;
        Ok(dir)
    }

    /// The path of `group`'s link to the store's code file `code`, made
    /// now if missing, and made again if it names another file (left by
    /// an artifact removed and stored anew since). A start whose link is
    /// there costs two `stat`s; the directory is made only when missing.
    pub fn link(&self, group: &str, code: &Path) -> io::Result<PathBuf> {
        let name = code
            .file_name()
            .ok_or_else(|| io::Error::other(format!("{} names no file", code.display())))?;
        let link = self.dir.join(group).join(name);
        let target = sysfs::file_id(code)?;
        match sysfs::file_id(&link) {
            Ok(found) if found == target => return Ok(link),
            Ok(_) => fs::remove_file(&link)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let made = match fs::hard_link(code, &link) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.group_dir(group)?;
                fs::hard_link(code, &link)
            }
            made => made,
        };
        match made {
            Ok(()) => Ok(link),
            // Another start of the same artifact linked it first.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && sysfs::file_id(&link)? == target => Ok(link),
            Err(e) => Err(e),
        }
    }

    /// Removes every group's link named `name` (the artifact is going).
    pub fn unlink_everywhere(&self, name: &str) -> io::Result<()> {
        for group in self.groups()? {
            match fs::remove_file(group.join(name)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }

    /// Removes links whose code file is no longer in the store.
    pub fn remove_stale(&self, store_dir: &Path) -> io::Result<()> {
        for group in self.groups()? {
            for entry in fs::read_dir(&group)? {
                let entry = entry?;
                if !store_dir.join(entry.file_name()).exists() {
                    fs::remove_file(entry.path())?;
                }
            }
        }
        Ok(())
    }

    fn groups(&self) -> io::Result<Vec<PathBuf>> {
        match fs::read_dir(&self.dir) {
            Ok(entries) => entries.map(|entry| entry.map(|e| e.path())).collect(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn store_with_code(name: &str, bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let code = dir.path().join(name);
        fs::write(&code, bytes).unwrap();
        (dir, code)
    }

    #[test]
    fn a_link_is_the_code_file_itself_and_is_made_once() {
        let (store, code) = store_with_code("ab.code", b"code");
        let links = GroupLinks::in_store(store.path());
        let link = links.link("sensors", &code).unwrap();
        assert_eq!(link, store.path().join("groups/sensors/ab.code"));
        assert_eq!(fs::metadata(&link).unwrap().ino(), fs::metadata(&code).unwrap().ino());
        assert_eq!(links.link("sensors", &code).unwrap(), link);
        assert_eq!(fs::metadata(&code).unwrap().nlink(), 2, "one link, not two");
    }

    #[test]
    fn a_link_to_a_replaced_code_file_is_made_again() {
        let (store, code) = store_with_code("ab.code", b"old");
        let links = GroupLinks::in_store(store.path());
        let link = links.link("g", &code).unwrap();
        fs::remove_file(&code).unwrap();
        fs::write(&code, b"new").unwrap();
        assert_eq!(fs::read(links.link("g", &code).unwrap()).unwrap(), b"new");
        assert_eq!(fs::metadata(&link).unwrap().ino(), fs::metadata(&code).unwrap().ino());
    }

    #[test]
    fn links_go_with_their_artifact_and_stale_ones_are_cleared() {
        let (store, code) = store_with_code("ab.code", b"code");
        let other = store.path().join("cd.code");
        fs::write(&other, b"other").unwrap();
        let links = GroupLinks::in_store(store.path());
        for group in ["a", "b"] {
            links.link(group, &code).unwrap();
            links.link(group, &other).unwrap();
        }
        links.unlink_everywhere("ab.code").unwrap();
        assert!(!store.path().join("groups/a/ab.code").exists());
        assert!(!store.path().join("groups/b/ab.code").exists());
        assert!(store.path().join("groups/b/cd.code").exists());
        fs::remove_file(&other).unwrap();
        links.remove_stale(store.path()).unwrap();
        assert!(!store.path().join("groups/a/cd.code").exists());
        // No groups yet is not an error.
        let empty = tempfile::tempdir().unwrap();
        GroupLinks::in_store(empty.path()).unlink_everywhere("x.code").unwrap();
        GroupLinks::in_store(empty.path()).remove_stale(empty.path()).unwrap();
    }
}
