//! A code file mapped read-only and private: its pages are the page
//! cache's, so every process that maps the same file shares one copy of
//! them in memory (until one writes to a page, which loaded code never
//! does). [`crate::engine::file_code`] builds on it to share a component's
//! code between worker processes.
//!
//! Or a file read once into memory of its own, placed so that a chosen
//! byte (an artifact's code, after its header) starts a page: wasmtime can
//! then run that code where it lies instead of copying it again.

use nix::sys::mman::{MapFlags, ProtFlags};
use std::fs::File;
use std::io;
use std::num::NonZeroUsize;
use std::ptr::NonNull;

/// A whole file mapped `PROT_READ`, `MAP_PRIVATE` (or read into anonymous
/// memory, [`MappedFile::read_aligned`]); unmapped on drop.
#[derive(Debug)]
pub struct MappedFile {
    /// The mapping.
    start: NonNull<u8>,
    len: NonZeroUsize,
    /// Where in the mapping the file's bytes begin, and how many there are.
    data: usize,
    data_len: NonZeroUsize,
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
        let len = nonzero_len(file, "map")?;
        // SAFETY: a fresh mapping at an address the kernel picks: it
        // overlaps nothing Rust owns. The file is only read through it.
        let start = unsafe { nix::sys::mman::mmap(None, len, ProtFlags::PROT_READ, MapFlags::MAP_PRIVATE, file, 0) }
            .map_err(io::Error::from)?;
        Ok(Self {
            start: start.cast(),
            len,
            data: 0,
            data_len: len,
        })
    }

    /// Reads all of `file` (which must not be empty) into fresh private
    /// memory, placed so that the file's byte `aligned` starts a page, and
    /// leaves that memory read-only. One copy, the kernel's, where reading
    /// into a `Vec` and handing it to wasmtime makes two.
    pub fn read_aligned(file: &File, aligned: usize) -> io::Result<Self> {
        let data_len = nonzero_len(file, "read")?;
        let page = page_size();
        let data = (page - aligned % page) % page;
        let len = data
            .checked_add(data_len.get())
            .and_then(NonZeroUsize::new)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "file too large to read into memory"))?;
        // SAFETY: a fresh anonymous mapping at an address the kernel picks:
        // it overlaps nothing Rust owns.
        let start = unsafe {
            nix::sys::mman::mmap_anonymous(
                None,
                len,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                // Every page is about to be written: one call to back them
                // all, not a fault per page.
                MapFlags::MAP_PRIVATE | MapFlags::MAP_POPULATE,
            )
        }
        .map_err(io::Error::from)?;
        let mapped = Self {
            start: start.cast(),
            len,
            data,
            data_len,
        };
        // SAFETY: `data..len` lies inside the mapping just made, which is
        // writable and borrowed by nothing else yet.
        let into = unsafe { std::slice::from_raw_parts_mut(mapped.start.as_ptr().add(data), data_len.get()) };
        std::os::unix::fs::FileExt::read_exact_at(file, into, 0)?;
        // SAFETY: the whole mapping, owned by `mapped`; nothing borrows it.
        unsafe { nix::sys::mman::mprotect(mapped.start.cast(), len.get(), ProtFlags::PROT_READ) }
            .map_err(io::Error::from)?;
        Ok(mapped)
    }

    /// The file's bytes, for a borrower that keeps to the mapping's lifetime.
    pub fn as_raw(&self) -> NonNull<[u8]> {
        // SAFETY: `data` is inside the mapping (0, or below a page ahead of
        // `data_len` bytes that end at its end).
        let start = unsafe { self.start.add(self.data) };
        NonNull::slice_from_raw_parts(start, self.data_len.get())
    }

    /// The file's bytes.
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: the mapping lives as long as `self` and is only written
        // before it is handed out (`read_aligned`), never after.
        unsafe { self.as_raw().as_ref() }
    }

    /// Where `part`, a slice of [`Self::bytes`], lies in the file.
    pub fn range_of(&self, part: &[u8]) -> std::ops::Range<usize> {
        let start = (part.as_ptr() as usize).saturating_sub(self.bytes().as_ptr() as usize);
        start..start + part.len()
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

/// The size of `file`, which must not be empty (else "cannot VERB a file
/// of 0 bytes").
fn nonzero_len(file: &File, verb: &str) -> io::Result<NonZeroUsize> {
    let size = file.metadata()?.len();
    usize::try_from(size).ok().and_then(NonZeroUsize::new).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("cannot {verb} a file of {size} bytes"),
        )
    })
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
    fn a_file_read_aligned_has_the_chosen_byte_on_a_page_boundary() {
        let mut file = tempfile::tempfile().unwrap();
        let content: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
        file.write_all(&content).unwrap();
        for aligned in [0, 1, 100, 4095, 4096, 5000] {
            let read = MappedFile::read_aligned(&file, aligned).unwrap();
            assert_eq!(read.bytes(), &content[..], "aligned at {aligned}");
            let at = read.bytes()[aligned..].as_ptr() as usize;
            assert_eq!(at % page_size(), 0, "byte {aligned} starts a page");
            assert!(read.contains(read.bytes().as_ptr()));
            assert!(!read.contains(read.bytes().as_ptr().wrapping_add(content.len())));
        }
    }

    #[test]
    fn an_empty_file_is_refused() {
        let file = tempfile::tempfile().unwrap();
        let err = MappedFile::map(&file).unwrap_err();
        assert!(err.to_string().contains("cannot map a file of 0 bytes"), "{err}");
        let err = MappedFile::read_aligned(&file, 0).unwrap_err();
        assert!(err.to_string().contains("cannot read a file of 0 bytes"), "{err}");
    }
}
