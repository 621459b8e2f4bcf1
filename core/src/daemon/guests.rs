//! Where trusted guests run: a thread of their own with its own smol
//! executor, apart from the control plane.
//!
//! The daemon's main thread runs the control executor: the management
//! socket (accept, handshake, requests, follow), the supervisor's timers
//! (grace periods, backoff, health windows) and the links to workers. No
//! guest code is ever polled there. In-process guests share the guest
//! thread and yield to each other at every epoch (10 ms); however many of
//! them spin, a management request never waits behind one.

use std::sync::Arc;
use std::thread::JoinHandle;

/// The guest thread; stopped (after its current poll) and joined when dropped.
#[derive(Debug)]
pub struct GuestThread {
    executor: Arc<smol::Executor<'static>>,
    stop: async_channel::Sender<()>,
    thread: Option<JoinHandle<()>>,
}

impl GuestThread {
    /// Starts the thread, idle until tasks are spawned on [`Self::executor`].
    pub fn start() -> std::io::Result<Self> {
        let executor = Arc::new(smol::Executor::new());
        let (stop, stopped) = async_channel::bounded::<()>(1);
        let runs = executor.clone();
        let thread = std::thread::Builder::new()
            .name("arcella-guests".into())
            .spawn(move || {
                // wasmtime-wasi's host calls need a tokio context: Compat
                // provides one (a single tokio thread) around every guest.
                // A plain parker, not `smol::block_on`: an idle thread in
                // async-io's `block_on` takes its reactor, and then every
                // management request woke this thread first, which woke the
                // control thread (one more hand-off on each request). The
                // control thread drives the reactor; async-io's own thread
                // does while it is busy.
                smol::future::block_on(async_compat::Compat::new(runs.run(async move {
                    let _ = stopped.recv().await;
                })));
            })?;
        Ok(Self {
            executor,
            stop,
            thread: Some(thread),
        })
    }

    /// The executor in-process guests are spawned on.
    pub fn executor(&self) -> Arc<smol::Executor<'static>> {
        self.executor.clone()
    }
}

impl Drop for GuestThread {
    fn drop(&mut self) {
        self.stop.close();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// A task that never yields on the guest thread must not delay a task
    /// on the control executor (what broke: `status` took seconds while a
    /// trusted module spun).
    #[test]
    fn a_spinning_guest_task_does_not_delay_the_control_executor() {
        let guests = GuestThread::start().unwrap();
        let spinning = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let spins = spinning.clone();
        let (began_tx, began) = async_channel::bounded::<()>(1);
        let task = guests.executor().spawn(async move {
            let _ = began_tx.send(()).await;
            while spins.load(std::sync::atomic::Ordering::Relaxed) {
                std::hint::spin_loop();
            }
        });
        let control = smol::Executor::new();
        let waited = smol::block_on(control.run(async {
            began.recv().await.unwrap();
            let at = Instant::now();
            smol::Timer::after(Duration::from_millis(5)).await;
            at.elapsed()
        }));
        spinning.store(false, std::sync::atomic::Ordering::Relaxed);
        smol::block_on(task);
        assert!(waited < Duration::from_millis(100), "a 5 ms timer took {waited:?}");
    }
}
