//! How often the daemon's log speaks of one group's workers starting and
//! ending: at most [`LINES_PER_WINDOW`] lines a [`WINDOW`] per group, so a
//! module restarting all the time cannot fill the log (what broke: 64
//! worker spawns a second gave 20 KB/s of daemon log). What was left out
//! is counted and said when the next window begins.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Lines about one group's worker starts and ends per window.
pub const LINES_PER_WINDOW: u32 = 10;
/// The window.
pub const WINDOW: Duration = Duration::from_secs(60);

/// What to do with one line about a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Log it; `left_out` lines were not logged in the window before.
    Log { left_out: u32 },
    /// Log it, and say the group's lines are quieted for the window.
    LogLast,
    /// Leave it out (counted).
    LeaveOut,
}

/// Per group: the current window, lines logged and left out in it.
#[derive(Debug, Default)]
pub struct Churn {
    groups: Mutex<BTreeMap<String, Window>>,
}

#[derive(Debug)]
struct Window {
    began: Instant,
    logged: u32,
    left_out: u32,
}

impl Churn {
    /// The verdict on one more line about `group`, at `now`.
    pub fn admit(&self, group: &str, now: Instant) -> Verdict {
        let mut groups = self.groups.lock().unwrap_or_else(PoisonError::into_inner);
        let window = groups.entry(group.to_owned()).or_insert(Window {
            began: now,
            logged: 0,
            left_out: 0,
        });
        let mut left_out = 0;
        if now.duration_since(window.began) >= WINDOW {
            left_out = window.left_out;
            *window = Window {
                began: now,
                logged: 0,
                left_out: 0,
            };
        }
        window.logged += 1;
        match window.logged {
            n if n < LINES_PER_WINDOW => Verdict::Log { left_out },
            LINES_PER_WINDOW => Verdict::LogLast,
            _ => {
                window.left_out += 1;
                Verdict::LeaveOut
            }
        }
    }

    /// Logs `line` about `group` at `level` if its window has room.
    pub fn log(&self, group: &str, level: log::Level, line: impl FnOnce() -> String) {
        match self.admit(group, Instant::now()) {
            Verdict::Log { left_out } => {
                if left_out > 0 {
                    log::info!(
                        "worker `{group}`: {left_out} more lines about its starts and ends were not logged in the \
                         last {}",
                        crate::run::humanize(WINDOW)
                    );
                }
                log::log!(level, "{}", line());
            }
            Verdict::LogLast => {
                log::log!(level, "{}", line());
                log::warn!(
                    "worker `{group}` starts and ends often (a module restarting?): its next start and end lines are \
                     left out until {} have passed, then counted",
                    crate::run::humanize(WINDOW)
                );
            }
            Verdict::LeaveOut => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_gets_its_lines_per_window_then_a_count_of_the_rest() {
        let churn = Churn::default();
        let start = Instant::now();
        let verdicts: Vec<Verdict> = (0..15).map(|_| churn.admit("g", start)).collect();
        assert_eq!(verdicts[0], Verdict::Log { left_out: 0 });
        assert_eq!(verdicts[LINES_PER_WINDOW as usize - 1], Verdict::LogLast);
        assert!(
            verdicts[LINES_PER_WINDOW as usize..]
                .iter()
                .all(|v| *v == Verdict::LeaveOut)
        );
        // Another group is counted on its own.
        assert_eq!(churn.admit("h", start), Verdict::Log { left_out: 0 });
        // The next window says how many were left out.
        assert_eq!(churn.admit("g", start + WINDOW), Verdict::Log { left_out: 5 });
        assert_eq!(churn.admit("g", start + WINDOW), Verdict::Log { left_out: 0 });
    }
}
