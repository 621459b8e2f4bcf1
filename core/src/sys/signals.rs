//! SIGINT/SIGTERM for a foreground run (`arcella run`), without a thread:
//! the first signal raises the guest's stop flag and arms a timer for the
//! grace; the timer, or a second signal, ends the process with 128 + the
//! signal's number, as a shell reports a process a signal ended. Only
//! async-signal-safe calls (an atomic store, `write`, `setitimer`,
//! `_exit`) run in the handlers; what they print is formatted beforehand.

use nix::libc;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use std::io;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

struct Watch {
    stop: Arc<AtomicBool>,
    grace: Duration,
    asked: Vec<u8>,
    late: Vec<u8>,
}

static WATCH: OnceLock<Watch> = OnceLock::new();
/// The first signal's number, 0 before it.
static FIRST: AtomicI32 = AtomicI32::new(0);

/// Installs the handlers (once per process). `name` is the guest's, for
/// the two lines printed on stderr when the grace starts and runs out.
pub fn on_termination(name: &str, stop: Arc<AtomicBool>, grace: Duration) -> io::Result<()> {
    let watch = Watch {
        stop,
        grace,
        asked: format!(
            "arcella: asked {name} to stop; it has {} (another signal ends it now)\n",
            crate::run::humanize(grace)
        )
        .into_bytes(),
        late: format!("arcella: {name} did not stop in time; ending it\n").into_bytes(),
    };
    if WATCH.set(watch).is_err() {
        return Err(io::Error::other("signal handlers are already installed"));
    }
    let terminate = SigAction::new(SigHandler::Handler(on_signal), SaFlags::SA_RESTART, SigSet::empty());
    let alarm = SigAction::new(SigHandler::Handler(on_alarm), SaFlags::SA_RESTART, SigSet::empty());
    // SAFETY: the handlers only call async-signal-safe functions and read
    // `WATCH`, which is set (above) before they can run and never changes.
    unsafe {
        sigaction(Signal::SIGINT, &terminate).map_err(io::Error::from)?;
        sigaction(Signal::SIGTERM, &terminate).map_err(io::Error::from)?;
        sigaction(Signal::SIGALRM, &alarm).map_err(io::Error::from)?;
    }
    Ok(())
}

fn say(bytes: &[u8]) {
    // SAFETY: write(2) is async-signal-safe; `bytes` is valid for its length.
    let _ = unsafe { libc::write(libc::STDERR_FILENO, bytes.as_ptr().cast(), bytes.len()) };
}

fn end(signal: libc::c_int) -> ! {
    // SAFETY: _exit is async-signal-safe and ends the process at once.
    unsafe { libc::_exit(128 + signal) }
}

extern "C" fn on_signal(signal: libc::c_int) {
    let Some(watch) = WATCH.get() else { end(signal) };
    if FIRST.swap(signal, Ordering::SeqCst) != 0 || watch.grace.is_zero() {
        end(signal);
    }
    watch.stop.store(true, Ordering::SeqCst);
    say(&watch.asked);
    let timer = libc::itimerval {
        it_interval: libc::timeval { tv_sec: 0, tv_usec: 0 },
        it_value: libc::timeval {
            tv_sec: watch.grace.as_secs() as libc::time_t,
            tv_usec: watch.grace.subsec_micros() as libc::suseconds_t,
        },
    };
    // SAFETY: setitimer only reads `timer`; it is a plain system call.
    unsafe { libc::setitimer(libc::ITIMER_REAL, &timer, std::ptr::null_mut()) };
}

extern "C" fn on_alarm(_: libc::c_int) {
    if let Some(watch) = WATCH.get() {
        say(&watch.late);
    }
    end(FIRST.load(Ordering::SeqCst));
}
