//! One line of progress on stderr, redrawn in place, for the verbs that
//! move or compile big files (`install`, `update`, `compile`,
//! `fleet deploy`): a 45 MB artifact takes long enough that silence reads
//! as a hang.
//!
//! Only on a terminal: when stderr is a pipe or a file (scripts, tests,
//! `--json`) a [`Progress`] prints nothing at all, so what those readers
//! get is unchanged. On a terminal the line is redrawn with `\r` at most
//! [`REDRAW_EVERY`] (~10 times a second, so a fast transfer does not
//! spend its time drawing), and ends with a final line that stays.
//!
//! A transfer counts bytes the other side has acknowledged (the daemon's
//! `Uploaded { received }`, the broker's PUBACKs), not bytes handed to the
//! socket. A compile has nothing to count (wasmtime reports no progress):
//! its line says only how long it has been running, redrawn by a thread
//! of its own while the compiler holds the main one.

use std::io::{IsTerminal, Write};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The shortest time between two redraws.
pub const REDRAW_EVERY: Duration = Duration::from_millis(100);

/// Whether progress is drawn: stderr is a terminal and the output is not
/// for a program (`--json`).
pub fn wanted(json: bool) -> bool {
    !json && std::io::stderr().is_terminal()
}

/// A progress line for a transfer of `total` bytes; silent unless
/// [`wanted`].
#[derive(Debug)]
pub struct Progress {
    /// `None` when silent.
    line: Option<Line>,
}

#[derive(Debug)]
struct Line {
    /// "uploading sensor.cwasm"
    doing: String,
    /// "uploaded sensor.cwasm"
    done: String,
    total: u64,
    sent: u64,
    started: Instant,
    drawn: Option<Instant>,
}

impl Progress {
    /// A line that reads `{doing}  12.3 MiB / 44.6 MiB  27%  38.1 MiB/s`
    /// while it runs and `{done}  44.6 MiB / 44.6 MiB  100%  37.2 MiB/s  1.2 s`
    /// at the end.
    pub fn bytes(doing: impl Into<String>, done: impl Into<String>, total: u64, json: bool) -> Self {
        let line = wanted(json).then(|| Line {
            doing: doing.into(),
            done: done.into(),
            total,
            sent: 0,
            started: Instant::now(),
            drawn: None,
        });
        Self { line }
    }

    /// `sent` of the total bytes are through; redraws unless it did so
    /// less than [`REDRAW_EVERY`] ago (the first update always draws).
    pub fn update(&mut self, sent: u64) {
        let Some(line) = &mut self.line else { return };
        line.sent = sent.min(line.total);
        if line.drawn.is_some_and(|at| at.elapsed() < REDRAW_EVERY) {
            return;
        }
        line.drawn = Some(Instant::now());
        let elapsed = line.started.elapsed();
        let percent = (line.sent * 100).checked_div(line.total).unwrap_or(100);
        draw(&format!(
            "{}  {} / {}  {percent}%  {}",
            line.doing,
            size(line.sent),
            size(line.total),
            rate(line.sent, elapsed)
        ));
    }

    /// The final line: all of it went through.
    pub fn finish(mut self) {
        let Some(line) = self.line.take() else { return };
        let elapsed = line.started.elapsed();
        let total = size(line.total);
        end(&format!(
            "{}  {total} / {total}  100%  {}  {}",
            line.done,
            rate(line.total, elapsed),
            seconds(elapsed)
        ));
    }
}

impl Drop for Progress {
    /// Stopped part way (an error): the line stays as it was, and what
    /// comes next starts on a line of its own.
    fn drop(&mut self) {
        if self.line.is_some() {
            end("");
        }
    }
}

/// A line that counts the seconds of work that reports no progress of its
/// own: `{doing} … 12 s`, then `{done} in 14.2 s`. Silent unless [`wanted`].
/// (Only a build with the compiler has work of that kind.)
#[derive(Debug)]
#[cfg_attr(not(feature = "compiler"), allow(dead_code))]
pub struct Elapsed {
    /// The drawing thread and how to stop it; `None` when silent.
    ticker: Option<(Sender<()>, JoinHandle<()>)>,
    started: Instant,
}

/// A spinner's frames, so the line moves even between seconds.
#[cfg_attr(not(feature = "compiler"), allow(dead_code))]
const SPINNER: [char; 4] = ['|', '/', '-', '\\'];

#[cfg_attr(not(feature = "compiler"), allow(dead_code))]
impl Elapsed {
    /// Starts drawing `{doing} … N s` (at once, then ~10 times a second).
    pub fn start(doing: impl Into<String>, json: bool) -> Self {
        let started = Instant::now();
        if !wanted(json) {
            return Self { ticker: None, started };
        }
        let doing = doing.into();
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("arcella-progress".into())
            .spawn(move || {
                for frame in SPINNER.iter().cycle() {
                    draw(&format!("{doing} … {} s {frame}", started.elapsed().as_secs()));
                    match stopped.recv_timeout(REDRAW_EVERY) {
                        Err(RecvTimeoutError::Timeout) => {}
                        // Told to stop, or the owner is gone.
                        Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
                    }
                }
            });
        // No thread (out of resources): no progress, the work goes on.
        let ticker = thread.ok().map(|handle| (stop, handle));
        Self { ticker, started }
    }

    /// Stops drawing and leaves `{done} in N s` on the line.
    pub fn finish(mut self, done: &str) {
        if self.stop() {
            end(&format!("{done} in {}", seconds(self.started.elapsed())));
        }
    }

    /// Stops the thread; whether there was one (a line to end).
    fn stop(&mut self) -> bool {
        let Some((stop, handle)) = self.ticker.take() else {
            return false;
        };
        let _ = stop.send(());
        let _ = handle.join();
        true
    }
}

impl Drop for Elapsed {
    fn drop(&mut self) {
        if self.stop() {
            end("");
        }
    }
}

/// Redraws the line: back to its start, the text, erase what is left of
/// a longer previous text. A failed write to stderr is not worth an error.
fn draw(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "\r{text}\x1b[K").and_then(|()| err.flush());
}

/// The last drawing of a line, which stays (an empty `text` keeps what is
/// there and only moves to the next line).
fn end(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = match text {
        "" => writeln!(err),
        text => writeln!(err, "\r{text}\x1b[K"),
    };
}

/// Sizes with one decimal always, so the line does not jump about.
pub fn size(bytes: u64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    if bytes < 1024 * 1024 {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    } else {
        format!("{:.1} MiB", bytes as f64 / MIB)
    }
}

fn rate(bytes: u64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    if secs < 0.001 {
        return "-- MiB/s".into();
    }
    format!("{}/s", size((bytes as f64 / secs) as u64))
}

fn seconds(elapsed: Duration) -> String {
    format!("{:.1} s", elapsed.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_rates_keep_one_decimal() {
        assert_eq!(size(512), "0.5 KiB");
        assert_eq!(size(44_600_000), "42.5 MiB");
        assert_eq!(size(12 * 1024 * 1024), "12.0 MiB");
        assert_eq!(rate(10 * 1024 * 1024, Duration::from_secs(2)), "5.0 MiB/s");
        assert_eq!(rate(10, Duration::ZERO), "-- MiB/s");
    }
}
