//! A thread that advances an engine's epoch at a fixed period while a guest
//! runs, and stops when dropped.
//!
//! "While a guest runs" means while some guest future of this process is
//! being polled: a guest executing wasm (or a host call that does not
//! wait). A guest parked in a host call (a sleep, a socket, an empty
//! inbox) is not polled and needs no tick: epochs only matter to code that
//! runs, and every wall-clock deadline is checked both by the epoch
//! callback and by a timer. So with every guest waiting the thread parks
//! and the process makes no wake-up of its own; the first guest polled
//! again unparks it. Guest futures are wrapped in [`ticking`] for this.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender, TryRecvError};
use std::sync::{Mutex, PoisonError};
use std::thread::{JoinHandle, Thread};
use std::time::Duration;
use wasmtime::Engine;

/// How often the epoch advances: the granularity of timeouts and of
/// yielding between guests.
pub const EPOCH_PERIOD: Duration = Duration::from_millis(10);

/// Guest futures being polled right now, in this process.
static POLLED: AtomicUsize = AtomicUsize::new(0);
/// Ticker threads parked until a guest is polled again.
static PARKED: Mutex<Vec<Thread>> = Mutex::new(Vec::new());
/// Whether `PARKED` may be non-empty: spares the lock on the hot path.
static ANY_PARKED: AtomicBool = AtomicBool::new(false);

/// Runs `guest` (a future that executes wasm) so that the epoch tickers of
/// this process run while it is polled.
pub async fn ticking<F: Future>(guest: F) -> F::Output {
    let mut guest = std::pin::pin!(guest);
    std::future::poll_fn(move |cx| {
        let _polled = Polled::enter();
        guest.as_mut().poll(cx)
    })
    .await
}

/// Counts one poll of a guest future for as long as it lives.
struct Polled;

impl Polled {
    fn enter() -> Self {
        // SeqCst pairs with the ticker's registration in `wait_for_a_guest`:
        // either it sees this count, or this sees its registration.
        if POLLED.fetch_add(1, Ordering::SeqCst) == 0 && ANY_PARKED.load(Ordering::SeqCst) {
            let mut parked = PARKED.lock().unwrap_or_else(PoisonError::into_inner);
            ANY_PARKED.store(false, Ordering::SeqCst);
            parked.drain(..).for_each(|thread| thread.unpark());
        }
        Polled
    }
}

impl Drop for Polled {
    fn drop(&mut self) {
        POLLED.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Whether any guest future of this process is being polled.
pub fn guests_polled() -> bool {
    POLLED.load(Ordering::SeqCst) > 0
}

/// Parks the calling ticker thread until a guest is polled (or it is
/// unparked to stop). May return early; callers loop.
fn wait_for_a_guest() {
    if guests_polled() {
        return;
    }
    let me = std::thread::current();
    {
        let mut parked = PARKED.lock().unwrap_or_else(PoisonError::into_inner);
        parked.push(me.clone());
        ANY_PARKED.store(true, Ordering::SeqCst);
    }
    if !guests_polled() {
        std::thread::park();
    }
    let mut parked = PARKED.lock().unwrap_or_else(PoisonError::into_inner);
    parked.retain(|thread| thread.id() != me.id());
    ANY_PARKED.store(!parked.is_empty(), Ordering::SeqCst);
}

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

    /// Calls `tick` every [`EPOCH_PERIOD`] while a guest is polled, until
    /// dropped or until `tick` returns false (its engines are gone).
    pub fn start_with(tick: impl Fn() -> bool + Send + 'static) -> std::io::Result<Self> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("arcella-epoch".into())
            .spawn(move || {
                loop {
                    wait_for_a_guest();
                    match stopped.try_recv() {
                        Err(TryRecvError::Empty) => {}
                        _ => return,
                    }
                    match stopped.recv_timeout(EPOCH_PERIOD) {
                        Err(RecvTimeoutError::Timeout) => {}
                        _ => return,
                    }
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
            // It may be parked waiting for a guest.
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicU64;
    use std::time::Instant;

    fn counting() -> (Arc<AtomicU64>, EpochTicker) {
        let ticks = Arc::new(AtomicU64::new(0));
        let counter = ticks.clone();
        let ticker = EpochTicker::start_with(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            true
        })
        .unwrap();
        (ticks, ticker)
    }

    // Other tests of this process poll guests too, so "no tick while no
    // guest is polled" is checked in the footprint script and the daemon
    // test on a process of its own; here, that a polled guest gets ticks
    // even after the thread parked, and that a parked ticker stops.
    #[test]
    fn a_guest_polled_after_the_ticker_parked_wakes_it() {
        let (ticks, ticker) = counting();
        std::thread::sleep(EPOCH_PERIOD * 3);
        let before = ticks.load(Ordering::SeqCst);
        // A "guest" busy for 20 periods inside one poll.
        smol::block_on(ticking(async {
            let until = Instant::now() + EPOCH_PERIOD * 20;
            while Instant::now() < until {
                std::hint::spin_loop();
            }
        }));
        let during = ticks.load(Ordering::SeqCst) - before;
        assert!(during >= 5, "only {during} ticks in 20 periods of a polled guest");
        let started = Instant::now();
        drop(ticker);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "stopping took {:?}",
            started.elapsed()
        );
    }
}
