//! Resource limits on one guest: memory, tables, instances by a
//! `ResourceLimiter`, fuel and time by the store, each failure
//! recognisable afterwards.

use super::usage::Usage;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::ResourceLimiter;

/// What one run of a guest may consume. `None` means unbounded.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Limits {
    /// Wasm instructions (roughly) before the guest is stopped.
    pub fuel: Option<u64>,
    /// Total bytes of linear memory across the guest's memories.
    pub max_memory: Option<u64>,
    /// Wall-clock time before the guest is stopped.
    pub timeout: Option<Duration>,
}

/// Raised from inside `memory.grow` when a guest asks for more than its
/// limit; carried out of wasmtime as the trap's cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("memory limit of {limit} bytes exceeded: the guest asked for {requested} bytes")]
pub struct MemoryLimitExceeded {
    pub limit: u64,
    pub requested: u64,
}

/// Raised from inside `table.grow` (or instantiation) when a guest's
/// tables together would hold more than [`MAX_TABLE_ELEMENTS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "table limit of {limit} elements exceeded: the guest's tables would hold {requested} elements in all \
     (each costs host memory outside limits.memory; the limit is the same for every module)"
)]
pub struct TableLimitExceeded {
    pub limit: u64,
    pub requested: u64,
}

/// Host handles (open files, directories, streams, pollables, sockets…)
/// one guest may hold at once: each may be a descriptor of the process
/// that hosts it, which in-process is the daemon (what broke: a trusted
/// module that opened files took the daemon to its descriptor limit).
pub const MAX_HOST_HANDLES: usize = 256;

/// A guest tried to hold more than [`MAX_HOST_HANDLES`] host handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "host handle limit of {limit} exceeded: the guest held that many open files, streams and other host \
     resources at once (the limit is the same for every module; close what you no longer use)"
)]
pub struct HandleLimitExceeded {
    pub limit: usize,
}

/// The host could not provide memory the guest was entitled to: the
/// process (for a worker: its group's memory budget) is exhausted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "out of host memory: growing the guest's memory to {requested} bytes failed ({cause}); \
     the process has no more to give (for a worker: its group's memory budget, workers.memory)"
)]
pub struct HostOutOfMemory {
    pub requested: u64,
    pub cause: String,
}

/// Tracks the linear memory and table elements a guest holds and refuses
/// growth past their limits; counts the memory into the instance's
/// [`Usage`], if it has one, until the store (and this) is dropped.
#[derive(Debug, Default)]
pub struct GuestLimiter {
    max_memory: Option<u64>,
    in_use: u64,
    table_elements: u64,
    usage: Option<Arc<Usage>>,
}

impl GuestLimiter {
    pub fn new(max_memory: Option<u64>, usage: Option<Arc<Usage>>) -> Self {
        Self {
            max_memory,
            in_use: 0,
            table_elements: 0,
            usage,
        }
    }
}

impl Drop for GuestLimiter {
    fn drop(&mut self) {
        // The store is gone, and its memories with it.
        if let Some(usage) = &self.usage {
            usage.released(self.in_use);
        }
    }
}

/// Table elements one guest may hold across all its tables. An element
/// costs a pointer or two of host memory, so this bounds a guest's tables
/// to 16 MiB whatever its `limits.memory` (what broke: 100 tables of 1M
/// elements each took the daemon to 842 MB under `limits.memory = "1M"`).
pub const MAX_TABLE_ELEMENTS: u64 = 1 << 20;
/// Instances one guest may create (a component makes several).
pub const MAX_INSTANCES: usize = 256;
/// Tables, and memories, one guest may create.
pub const MAX_TABLES: usize = 256;
pub const MAX_MEMORIES: usize = 256;

impl ResourceLimiter for GuestLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let growth = desired.saturating_sub(current) as u64;
        let requested = self.in_use.saturating_add(growth);
        if let Some(limit) = self.max_memory
            && requested > limit
        {
            // Stop the guest rather than fail the grow: a guest whose
            // allocator aborts on a failed grow would otherwise die with an
            // `unreachable` that names no limit.
            return Err(wasmtime::Error::new(MemoryLimitExceeded { limit, requested }));
        }
        self.in_use = requested;
        if let Some(usage) = &self.usage {
            usage.grew(growth);
        }
        Ok(true)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        // As above: a named failure rather than -1 and an anonymous abort.
        Err(wasmtime::Error::new(HostOutOfMemory {
            requested: self.in_use,
            cause: format!("{error:#}"),
        }))
    }

    fn table_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let growth = desired.saturating_sub(current) as u64;
        let requested = self.table_elements.saturating_add(growth);
        if requested > MAX_TABLE_ELEMENTS {
            // A named failure, as for memory, rather than -1 from table.grow.
            return Err(wasmtime::Error::new(TableLimitExceeded {
                limit: MAX_TABLE_ELEMENTS,
                requested,
            }));
        }
        self.table_elements = requested;
        Ok(true)
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_is_counted_across_memories() {
        let mut limiter = GuestLimiter::new(Some(3 * 65536), None);
        assert!(limiter.memory_growing(0, 65536, None).unwrap());
        assert!(limiter.memory_growing(0, 2 * 65536, None).unwrap());
        let err = limiter.memory_growing(2 * 65536, 3 * 65536, None).unwrap_err();
        let cause = err.downcast_ref::<MemoryLimitExceeded>().unwrap();
        assert_eq!(cause.requested, 4 * 65536);
    }

    #[test]
    fn table_elements_are_counted_across_tables() {
        let mut limiter = GuestLimiter::new(Some(65536), None);
        let half = (MAX_TABLE_ELEMENTS / 2) as usize;
        assert!(limiter.table_growing(0, half, None).unwrap());
        assert!(limiter.table_growing(0, half, None).unwrap());
        let err = limiter.table_growing(0, 1, None).unwrap_err();
        let cause = err.downcast_ref::<TableLimitExceeded>().unwrap();
        assert_eq!(cause.requested, MAX_TABLE_ELEMENTS + 1);
    }

    #[test]
    fn memory_is_counted_into_the_usage_until_the_store_goes() {
        let usage = Usage::new();
        let mut first = GuestLimiter::new(Some(4 * 65536), Some(usage.clone()));
        let mut second = GuestLimiter::new(Some(4 * 65536), Some(usage.clone()));
        assert!(first.memory_growing(0, 2 * 65536, None).unwrap());
        assert!(second.memory_growing(0, 65536, None).unwrap());
        assert_eq!(usage.memory(), 3 * 65536);
        // A refused growth is not counted.
        assert!(first.memory_growing(2 * 65536, 8 * 65536, None).is_err());
        assert_eq!(usage.memory(), 3 * 65536);
        drop(first);
        assert_eq!(usage.memory(), 65536);
        drop(second);
        assert_eq!(usage.memory(), 0);
    }

    #[test]
    fn unlimited_grows_freely() {
        let mut limiter = GuestLimiter::new(None, None);
        assert!(limiter.memory_growing(0, 1 << 30, None).unwrap());
    }
}
