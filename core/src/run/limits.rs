//! Resource limits on one guest: memory by a `ResourceLimiter`, fuel and
//! time by the store, each failure recognisable afterwards.

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

/// Tracks the linear memory a guest holds and refuses growth past a limit.
#[derive(Debug, Default)]
pub struct GuestLimiter {
    max_memory: Option<u64>,
    in_use: u64,
}

impl GuestLimiter {
    pub fn new(max_memory: Option<u64>) -> Self {
        Self { max_memory, in_use: 0 }
    }
}

/// Growth that would take a table past this many elements is refused;
/// a table element costs a pointer of host memory.
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

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
        Ok(true)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        // As above: a named failure rather than -1 and an anonymous abort.
        Err(wasmtime::Error::new(HostOutOfMemory {
            requested: self.in_use,
            cause: format!("{error:#}"),
        }))
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_is_counted_across_memories() {
        let mut limiter = GuestLimiter::new(Some(3 * 65536));
        assert!(limiter.memory_growing(0, 65536, None).unwrap());
        assert!(limiter.memory_growing(0, 2 * 65536, None).unwrap());
        let err = limiter.memory_growing(2 * 65536, 3 * 65536, None).unwrap_err();
        let cause = err.downcast_ref::<MemoryLimitExceeded>().unwrap();
        assert_eq!(cause.requested, 4 * 65536);
    }

    #[test]
    fn unlimited_grows_freely() {
        let mut limiter = GuestLimiter::new(None);
        assert!(limiter.memory_growing(0, 1 << 30, None).unwrap());
    }
}
