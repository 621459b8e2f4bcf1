//! Components whose code runs from a mapping of their code file, so that
//! worker processes running the same artifact share one copy of it.
//!
//! wasmtime 48 maps a *module*'s file itself (`Module::deserialize_open_file`)
//! but has no such call for a component: `Component::deserialize` copies the
//! bytes into memory of the process, so five workers running one 34 MiB
//! Python component held five copies. A worker gets its code as a file
//! descriptor (its jail has no path to the store), so here the file is
//! mapped private and read-only ([`MappedFile`]), handed to
//! `Component::deserialize_raw`, and this engine's [`CustomCodeMemory`]
//! makes its text executable in place: the pages stay the page cache's,
//! shared by every process that maps the file.
//!
//! The mapping must outlive wasmtime's use of it, and wasmtime says when
//! that ends only by unpublishing the text at the start of dropping the
//! code, before it deregisters the code's unwind tables (which it reads
//! from the mapping). So unpublishing *retires* the mapping to a list of
//! the thread doing the drop, and the mapping is unmapped only when that
//! same thread next calls [`sweep`] (or exits): by then the drop, which
//! runs start to end on that thread, is over.
//!
//! `arcella run` loads an artifact file the same way, from its one read of
//! the file ([`FileCode::load_mapped`]), so wasmtime does not copy the code
//! a second time.
//!
//! Only native code is loaded this way: pulley bytecode is never
//! published, so wasmtime would never say when it is done with it.

use crate::artifact::{ArtifactKind, Program};
use crate::sys::code_map::{self, MappedFile};
use std::cell::RefCell;
use std::fs::File;
use std::ptr::NonNull;
use std::sync::{Arc, Mutex, PoisonError};
use wasmtime::component::Component;
use wasmtime::{CustomCodeMemory, Engine, Module};

/// Why a code file could not be loaded from its mapping.
#[derive(Debug, thiserror::Error)]
pub enum FileCodeError {
    #[error("cannot map its code file: {0}")]
    Map(#[from] std::io::Error),
    #[error("cannot load its code: {0}")]
    Load(String),
}

/// Mappings whose code wasmtime still uses, and the engine hook that
/// publishes their text.
#[derive(Debug, Default)]
pub struct FileCode {
    live: Mutex<Vec<MappedFile>>,
}

thread_local! {
    /// Mappings this thread's drops retired: unmapped at its next sweep.
    static RETIRED: RefCell<Vec<MappedFile>> = const { RefCell::new(Vec::new()) };
}

/// Unmaps the mappings this thread retired (at an earlier drop, now over).
pub fn sweep() {
    let retired = RETIRED.with(|retired| std::mem::take(&mut *retired.borrow_mut()));
    drop(retired);
}

impl FileCode {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Loads the native component of `file` (a verified code file) from a
    /// mapping of it. `engine` must be built with this `FileCode` as its
    /// custom code memory. (A module needs no help: wasmtime maps its file
    /// itself, `Module::deserialize_open_file`.)
    ///
    /// # Safety
    /// `file` must hold a component produced by `precompile_component` for
    /// an engine configured like `engine`, and must not change while mapped
    /// (the daemon's store never rewrites a code file in place).
    pub unsafe fn load_component(&self, engine: &Engine, file: &File) -> Result<Program, FileCodeError> {
        let mapped = MappedFile::map(file)?;
        let code = mapped.as_raw();
        // SAFETY: per this function's contract.
        unsafe { self.load_mapped(engine, mapped, code, ArtifactKind::Component) }
    }

    /// Loads the native `kind` at `code`, inside `mapped`, where it lies,
    /// and keeps `mapped` until wasmtime's drop of the code retires it.
    /// Besides [`Self::load_component`]'s mapping, `mapped` may be an
    /// artifact file [`MappedFile::read_aligned`] with its code on a page
    /// boundary: `arcella run`'s one copy of the file is then the only one.
    /// `engine` must be built with this `FileCode` as its custom code memory.
    ///
    /// # Safety
    /// `code` must lie in `mapped`, start a page, and hold a `kind`
    /// produced by wasmtime's `precompile_*` for an engine configured like
    /// `engine` (a code file the store verified, or an artifact whose
    /// digests [`crate::artifact::format::decode`] checked).
    pub unsafe fn load_mapped(
        &self,
        engine: &Engine,
        mapped: MappedFile,
        code: NonNull<[u8]>,
        kind: ArtifactKind,
    ) -> Result<Program, FileCodeError> {
        let start = code.cast::<u8>().as_ptr();
        self.lock().push(mapped);
        // The mapping stays in `live` until wasmtime's drop of the code
        // retires it.
        let loaded = match kind {
            ArtifactKind::Component => {
                // SAFETY: per this function's contract.
                unsafe { Component::deserialize_raw(engine, code) }.map(|c| Program::Component(c.into()))
            }
            // SAFETY: per this function's contract.
            ArtifactKind::Module => unsafe { Module::deserialize_raw(engine, code) }.map(|m| Program::Module(m.into())),
        };
        loaded.map_err(|e| {
            // Nothing uses the mapping: any code wasmtime made of it was
            // dropped on this thread before the error came back.
            self.lock().retain(|mapped| !mapped.contains(start));
            FileCodeError::Load(format!("{e:#}"))
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<MappedFile>> {
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[allow(
    clippy::not_unsafe_ptr_arg_deref,
    reason = "wasmtime's trait is safe to call: wasmtime promises the pointers are its code's"
)]
impl CustomCodeMemory for FileCode {
    fn required_alignment(&self) -> usize {
        code_map::page_size()
    }

    fn publish_executable(&self, ptr: *const u8, len: usize) -> wasmtime::Result<()> {
        // SAFETY: wasmtime passes the page-aligned text of code it loaded
        // (and verified as an ELF of this engine), in memory it was given
        // for that code: one of our mappings, or its own.
        unsafe { code_map::make_executable(ptr, len) }.map_err(wasmtime::Error::from)
    }

    fn unpublish_executable(&self, ptr: *const u8, len: usize) -> wasmtime::Result<()> {
        let mut live = self.lock();
        match live.iter().position(|mapped| mapped.contains(ptr)) {
            // wasmtime is dropping this code: the mapping goes once the
            // drop is over (see the module's doc).
            Some(index) => {
                let mapped = live.swap_remove(index);
                RETIRED.with(|retired| retired.borrow_mut().push(mapped));
                Ok(())
            }
            // Memory wasmtime owns: hand it back writable, as it expects.
            // SAFETY: wasmtime guarantees no code runs from it any more.
            None => unsafe { code_map::make_writable(ptr, len) }.map_err(wasmtime::Error::from),
        }
    }
}
