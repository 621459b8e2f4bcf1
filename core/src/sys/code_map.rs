//! A code file mapped read-only and private: its pages are the page
//! cache's, so every process that maps the same file shares one copy of
//! them in memory (until one writes to a page, which loaded code never
//! does). [`crate::engine::file_code`] builds on it to share a component's
//! code between worker processes.

use nix::sys::mman::{MapFlags, ProtFlags};
use std::fs::File;
use std::io;
use std::num::NonZeroUsize;
use std::ptr::NonNull;

/// A whole file mapped `PROT_READ`, `MAP_PRIVATE`; unmapped on drop.
#[derive(Debug)]
pub struct MappedFile {
    start: NonNull<u8>,
    len: NonZeroUsize,
}

// SAFETY: the mapping is plain memory owned by this value; the pointer is
// only dereferenced by whoever borrows it through `as_raw`, under the
// contract of that borrow. Moving the owner between threads is fine.
unsafe impl Send for MappedFile {}
// SAFETY: `&MappedFile` gives out only the address and length.
unsafe impl Sync for MappedFile {}

impl MappedFile {
    /// Maps all of `file` (which must not be empty).
    pub fn map(file: &File) -> io::Result<Self> {
        let size = file.metadata()?.len();
        let len = usize::try_from(size)
            .ok()
            .and_then(NonZeroUsize::new)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("cannot map a file of {size} bytes")))?;
        // SAFETY: a fresh mapping at an address the kernel picks: it
        // overlaps nothing Rust owns. The file is only read through it.
        let start = unsafe { nix::sys::mman::mmap(None, len, ProtFlags::PROT_READ, MapFlags::MAP_PRIVATE, file, 0) }
            .map_err(io::Error::from)?;
        Ok(Self {
            start: start.cast(),
            len,
        })
    }

    /// The mapped bytes, for a borrower that keeps to the mapping's lifetime.
    pub fn as_raw(&self) -> NonNull<[u8]> {
        NonNull::slice_from_raw_parts(self.start, self.len.get())
    }

    /// Whether `address` lies inside the mapping.
    pub fn contains(&self, address: *const u8) -> bool {
        let start = self.start.as_ptr() as usize;
        (start..start + self.len.get()).contains(&(address as usize))
    }
}

impl Drop for MappedFile {
    fn drop(&mut self) {
        // SAFETY: the range is exactly the mapping `map` made, and its owner
        // is going away, so nothing borrows it any more (the callers of
        // `as_raw` promise to be done first).
        if let Err(e) = unsafe { nix::sys::mman::munmap(self.start.cast(), self.len.get()) } {
            log::error!("unmapping a code file: {e}");
        }
    }
}

/// The system's page size.
pub fn page_size() -> usize {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .and_then(|size| usize::try_from(size).ok())
        .unwrap_or(4096)
}

/// Makes `len` bytes at `start` readable and executable (loaded code: it
/// was never written since it was mapped from its file, so no instruction
/// cache has stale lines for it).
///
/// # Safety
/// `start..start + len` must be page-aligned at `start`, lie in one mapping
/// owned by the caller, and hold machine code the caller trusts.
pub unsafe fn make_executable(start: *const u8, len: usize) -> io::Result<()> {
    let start = NonNull::new(start.cast_mut()).ok_or_else(|| io::Error::other("null code address"))?;
    // SAFETY: per this function's contract.
    unsafe { nix::sys::mman::mprotect(start.cast(), len, ProtFlags::PROT_READ | ProtFlags::PROT_EXEC) }
        .map_err(io::Error::from)
}

/// Makes `len` bytes at `start` readable and writable again.
///
/// # Safety
/// As for [`make_executable`], and no code may run from the range any more.
pub unsafe fn make_writable(start: *const u8, len: usize) -> io::Result<()> {
    let start = NonNull::new(start.cast_mut()).ok_or_else(|| io::Error::other("null code address"))?;
    // SAFETY: per this function's contract.
    unsafe { nix::sys::mman::mprotect(start.cast(), len, ProtFlags::PROT_READ | ProtFlags::PROT_WRITE) }
        .map_err(io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_mapped_file_reads_as_the_file_and_knows_its_range() {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(b"hello, mapped world").unwrap();
        let mapped = MappedFile::map(&file).unwrap();
        let raw = mapped.as_raw();
        // SAFETY: the mapping lives for this test and nothing writes it.
        let bytes = unsafe { raw.as_ref() };
        assert_eq!(bytes, b"hello, mapped world");
        let start = raw.cast::<u8>().as_ptr();
        assert!(mapped.contains(start));
        assert!(mapped.contains(start.wrapping_add(18)));
        assert!(!mapped.contains(start.wrapping_add(19)));
    }

    #[test]
    fn an_empty_file_is_refused() {
        let file = tempfile::tempfile().unwrap();
        let err = MappedFile::map(&file).unwrap_err();
        assert!(err.to_string().contains("cannot map a file of 0 bytes"), "{err}");
    }
}
