//! A thread that advances an engine's epoch at a fixed period while guests
//! with a deadline run, and stops when dropped.

use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;
use wasmtime::Engine;

/// How often the epoch advances: the granularity of timeouts and of
/// yielding between guests.
pub const EPOCH_PERIOD: Duration = Duration::from_millis(10);

/// Advances the epoch of an engine until dropped.
#[derive(Debug)]
pub struct EpochTicker {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    pub fn start(engine: &Engine) -> std::io::Result<Self> {
        let engine = engine.weak();
        Self::start_with(move || match engine.upgrade() {
            Some(engine) => {
                engine.increment_epoch();
                true
            }
            None => false,
        })
    }

    /// Calls `tick` every [`EPOCH_PERIOD`] until dropped, or until `tick`
    /// returns false (its engines are gone).
    pub fn start_with(tick: impl Fn() -> bool + Send + 'static) -> std::io::Result<Self> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("arcella-epoch".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(EPOCH_PERIOD) {
                    if !tick() {
                        return;
                    }
                }
            })?;
        Ok(Self {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
