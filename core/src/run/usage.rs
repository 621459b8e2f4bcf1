//! What one running instance uses, as it runs: the bytes of linear memory
//! its stores hold and the time its code has run. Shared as an
//! `Arc<Usage>` between the run (which writes) and whoever started it (the
//! supervisor in-process, a worker's table of instances), which reads it
//! whenever it likes without a lock or a message to the run.
//!
//! Memory is counted by each store's `GuestLimiter` (limits.rs): growth as
//! it is granted, all of it given back when the store is dropped, so an
//! HTTP server's or a provider's many instances add up, and a finished
//! request's instance stops counting. Time is the wall-clock time spent
//! inside polls of the guest's future ([`timed`]): running wasm and host
//! calls that do not wait. A guest parked in a host call (a sleep, a
//! socket) is not polled and costs nothing; on a CPU shared with other
//! work, time the thread was preempted mid-poll counts too.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// One instance's running totals; every field only ever read as a whole.
#[derive(Debug, Default)]
pub struct Usage {
    memory: AtomicU64,
    busy_ns: AtomicU64,
}

impl Usage {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Bytes of linear memory the instance's stores hold now.
    pub fn memory(&self) -> u64 {
        self.memory.load(Ordering::Relaxed)
    }

    /// Time the instance's code has run since it started.
    pub fn busy(&self) -> Duration {
        Duration::from_nanos(self.busy_ns.load(Ordering::Relaxed))
    }

    /// [`Usage::busy`] in whole milliseconds.
    pub fn cpu_ms(&self) -> u64 {
        self.busy_ns.load(Ordering::Relaxed) / 1_000_000
    }

    /// A store was granted `bytes` more linear memory.
    pub(crate) fn grew(&self, bytes: u64) {
        self.memory.fetch_add(bytes, Ordering::Relaxed);
    }

    /// A store holding `bytes` of linear memory was dropped.
    pub(crate) fn released(&self, bytes: u64) {
        // Never below zero, whatever order stores end in.
        let _ = self.memory.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |held| {
            Some(held.saturating_sub(bytes))
        });
    }

    /// The guest's code ran for `spent`.
    fn ran(&self, spent: Duration) {
        let nanos = u64::try_from(spent.as_nanos()).unwrap_or(u64::MAX);
        self.busy_ns.fetch_add(nanos, Ordering::Relaxed);
    }
}

/// Runs `guest`, adding the time each of its polls takes to `usage` (two
/// clock reads per poll, from the vDSO: tens of nanoseconds against the
/// epoch period of 10 ms a busy guest's poll lasts). Without a `usage`,
/// `guest` runs untouched.
pub async fn timed<F: Future>(usage: Option<Arc<Usage>>, guest: F) -> F::Output {
    let Some(usage) = usage else {
        return guest.await;
    };
    let mut guest = std::pin::pin!(guest);
    std::future::poll_fn(move |cx| {
        let entered = Instant::now();
        let polled = guest.as_mut().poll(cx);
        usage.ran(entered.elapsed());
        polled
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Busy for `spin` inside one poll, then parked for `park` (not
    /// polled), `rounds` times.
    async fn busy_then_parked(spin: Duration, park: Duration, rounds: u32) {
        for _ in 0..rounds {
            let until = Instant::now() + spin;
            while Instant::now() < until {
                std::hint::spin_loop();
            }
            smol::Timer::after(park).await;
        }
    }

    #[test]
    fn only_time_inside_polls_counts() {
        let usage = Usage::new();
        let began = Instant::now();
        smol::block_on(timed(
            Some(usage.clone()),
            busy_then_parked(Duration::from_millis(20), Duration::from_millis(80), 5),
        ));
        let wall = began.elapsed();
        let busy = usage.busy();
        assert!(busy >= Duration::from_millis(100), "busy {busy:?} of 5 × 20 ms spins");
        // The 400 ms parked are not counted (a loaded machine may stretch
        // the spins a little, never by the parked time).
        assert!(busy < Duration::from_millis(300), "busy {busy:?} of {wall:?} in all");
        assert!(wall >= Duration::from_millis(500));
        assert_eq!(usage.cpu_ms(), u64::try_from(busy.as_millis()).unwrap());
    }

    #[test]
    fn an_untimed_guest_runs_as_it_is() {
        assert_eq!(smol::block_on(timed(None, async { 7 })), 7);
    }

    #[test]
    fn memory_grows_and_is_given_back_but_never_below_zero() {
        let usage = Usage::new();
        usage.grew(3 * 65536);
        usage.grew(65536);
        assert_eq!(usage.memory(), 4 * 65536);
        usage.released(3 * 65536);
        assert_eq!(usage.memory(), 65536);
        usage.released(2 * 65536);
        assert_eq!(usage.memory(), 0);
    }
}
