//! The programs a worker has loaded, by the code file they came from:
//! every instance of one artifact in the worker shares one copy of its
//! code and one set of its memory images (wasmtime's copy-on-write images
//! belong to the loaded module), so a second instance of a 45 MB Python
//! component costs what it writes, not another 45 MB. An entry lives while
//! an instance uses it.

use arcella_core::artifact::Program;
use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::MetadataExt;

/// Which code file a program was loaded from, and with which engine. The
/// daemon's store never rewrites a code file in place (a new artifact is a
/// new file), so the same device and inode with the same size is the same
/// code, as long as the file stays open (no other file can take its inode
/// then): a loaded program is kept with its code file open
/// ([`SharedProgram`]). The change time is not part of it: each group's
/// link to a code file changes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProgramKey {
    dev: u64,
    ino: u64,
    size: u64,
    metered: bool,
}

/// A loaded program and its code file, held open while the program is.
#[derive(Clone)]
pub struct SharedProgram {
    pub program: Program,
    /// Never read: holding it keeps the file open.
    pub _code: std::sync::Arc<File>,
}

impl ProgramKey {
    /// The key of the code file `file`, for the engine with or without
    /// fuel metering; `None` if the file cannot be examined (it is then
    /// loaded and not shared).
    pub fn of(file: &File, metered: bool) -> Option<Self> {
        let meta = file.metadata().ok()?;
        Some(Self {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            metered,
        })
    }
}

/// Loaded programs with the number of instances using each.
pub struct SharedPrograms<P = SharedProgram> {
    loaded: HashMap<ProgramKey, (P, usize)>,
}

impl<P> Default for SharedPrograms<P> {
    fn default() -> Self {
        Self { loaded: HashMap::new() }
    }
}

impl<P: Clone> SharedPrograms<P> {
    /// The program for `key`, counted as used once more, if it is loaded.
    pub fn acquire(&mut self, key: &ProgramKey) -> Option<P> {
        let (program, users) = self.loaded.get_mut(key)?;
        *users += 1;
        Some(program.clone())
    }

    /// Keeps a program just loaded, used once. (Two starts of the same
    /// artifact may race to load it: the second one's copy is kept, the
    /// first one's lives as long as its instance.)
    pub fn insert(&mut self, key: ProgramKey, program: P) {
        let users = self.loaded.get(&key).map_or(0, |(_, users)| *users);
        self.loaded.insert(key, (program, users + 1));
    }

    /// Keeps a program loaded before any instance uses it (what a
    /// template's child inherited): the first start of its code takes it,
    /// and the last instance to stop frees it as any other.
    pub fn offer(&mut self, key: ProgramKey, program: P) {
        self.loaded.entry(key).or_insert((program, 0));
    }

    /// An instance stopped using `key`'s program; the last one frees it.
    pub fn release(&mut self, key: &ProgramKey) {
        if let Some((_, users)) = self.loaded.get_mut(key) {
            *users -= 1;
            if *users == 0 {
                self.loaded.remove(key);
            }
        }
    }

    /// How many programs are loaded.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.loaded.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_of(file: &File, metered: bool) -> ProgramKey {
        ProgramKey::of(file, metered).unwrap()
    }

    #[test]
    fn instances_of_one_code_file_share_its_program_until_the_last_one_stops() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("code");
        std::fs::write(&path, b"code").unwrap();
        let key = key_of(&File::open(&path).unwrap(), false);
        // Opened again (the daemon passes a new descriptor per start): the same key.
        assert_eq!(key, key_of(&File::open(&path).unwrap(), false));
        // The fuel-metered engine's program is another one.
        assert_ne!(key, key_of(&File::open(&path).unwrap(), true));

        let mut programs = SharedPrograms::<&str>::default();
        assert_eq!(programs.acquire(&key), None);
        programs.insert(key, "loaded once");
        assert_eq!(programs.acquire(&key), Some("loaded once"));
        programs.release(&key);
        assert_eq!(programs.len(), 1, "one instance still uses it");
        programs.release(&key);
        assert_eq!(programs.len(), 0, "the last one freed it");
        assert_eq!(programs.acquire(&key), None);

        // Offered before any instance (a template's child): the first
        // start takes it, its stop frees it.
        programs.offer(key, "inherited");
        assert_eq!(programs.acquire(&key), Some("inherited"));
        programs.release(&key);
        assert_eq!(programs.len(), 0, "freed after its only instance");
    }

    #[test]
    fn another_link_to_a_code_file_is_the_same_code() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("code");
        std::fs::write(&path, b"code").unwrap();
        let key = key_of(&File::open(&path).unwrap(), false);
        // The store links a code file into each group's directory that
        // runs it, which changes its change time.
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::hard_link(&path, dir.path().join("group-link")).unwrap();
        assert_eq!(key, key_of(&File::open(dir.path().join("group-link")).unwrap(), false));
    }

    #[test]
    fn a_new_file_for_the_same_module_is_new_code() {
        let dir = tempfile::tempdir().unwrap();
        let (old, new) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&old, b"version 1").unwrap();
        std::fs::write(&new, b"version 2").unwrap();
        let old_key = key_of(&File::open(&old).unwrap(), false);
        std::fs::rename(&new, &old).unwrap();
        assert_ne!(old_key, key_of(&File::open(&old).unwrap(), false));
    }
}
