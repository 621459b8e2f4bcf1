//! Blocking work (files, the key-value database, a management request)
//! moved off the async executors onto threads of a small pool.
//!
//! In place of `smol::unblock`: the `blocking` crate's pool keeps its idle
//! threads forever, each waking twice a second (a 500 ms wait, looped),
//! so one key-value write or `arcella info` left the daemon waking twice a
//! second for the rest of its life. Here an idle thread sleeps without a
//! timer and leaves after [`IDLE_EXIT`]: an idle daemon has no pool
//! threads and no wake-ups from it.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// Threads at most; more jobs queue.
const MAX_THREADS: usize = 8;
/// How long an idle thread waits for a job before it leaves.
pub const IDLE_EXIT: Duration = Duration::from_secs(10);

type Job = Box<dyn FnOnce() + Send>;

struct Pool {
    state: Mutex<State>,
    work: Condvar,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Job>,
    threads: usize,
    idle: usize,
}

static POOL: Pool = Pool {
    state: Mutex::new(State {
        queue: VecDeque::new(),
        threads: 0,
        idle: 0,
    }),
    work: Condvar::new(),
};

impl Pool {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn submit(&'static self, job: Job) {
        let mut state = self.lock();
        state.queue.push_back(job);
        if state.queue.len() > state.idle && state.threads < MAX_THREADS {
            let spawned = std::thread::Builder::new()
                .name("arcella-offload".into())
                .spawn(move || self.serve());
            match spawned {
                Ok(_) => state.threads += 1,
                // The queued job waits for a running thread; with none,
                // it runs here rather than never.
                Err(e) if state.threads == 0 => {
                    log::warn!("cannot start a thread for blocking work ({e}); running it in place");
                    let job = state.queue.pop_back();
                    drop(state);
                    if let Some(job) = job {
                        job();
                    }
                    return;
                }
                Err(e) => log::warn!("cannot start another thread for blocking work: {e}"),
            }
        }
        drop(state);
        self.work.notify_one();
    }

    fn serve(&self) {
        let mut state = self.lock();
        loop {
            while let Some(job) = state.queue.pop_front() {
                drop(state);
                job();
                state = self.lock();
            }
            state.idle += 1;
            let (next, waited) = self
                .work
                .wait_timeout(state, IDLE_EXIT)
                .unwrap_or_else(PoisonError::into_inner);
            state = next;
            state.idle -= 1;
            if waited.timed_out() && state.queue.is_empty() {
                state.threads -= 1;
                return;
            }
        }
    }
}

/// Runs `job` on a pool thread and waits for its result without blocking
/// the executor.
pub async fn offload<T: Send + 'static>(job: impl FnOnce() -> T + Send + 'static) -> T {
    let (done, result) = async_channel::bounded(1);
    POOL.submit(Box::new(move || {
        let _ = done.try_send(job());
    }));
    match result.recv().await {
        Ok(value) => value,
        // The job panicked (in a build that unwinds); so does the caller.
        Err(_) => panic!("a job offloaded to a blocking thread panicked"),
    }
}

/// Pool threads alive now.
pub fn threads() -> usize {
    POOL.lock().threads
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn jobs_run_off_the_executor_in_parallel_and_return_their_results() {
        let started = Instant::now();
        let results = smol::block_on(async {
            let a = smol::spawn(offload(|| {
                std::thread::sleep(Duration::from_millis(200));
                1
            }));
            let b = smol::spawn(offload(|| {
                std::thread::sleep(Duration::from_millis(200));
                2
            }));
            (a.await, b.await)
        });
        assert_eq!(results, (1, 2));
        // Two threads, not one after the other.
        assert!(
            started.elapsed() < Duration::from_millis(390),
            "{:?}",
            started.elapsed()
        );
        assert!(threads() >= 1);
    }
}
