//! Which module log lines reach the daemon's own log (stderr; the journal
//! under systemd, with `<N>` priorities, src/logging.rs): only
//! `wasi:logging` lines at `warn` and above, at most
//! [`LINES_PER_WINDOW`](crate::daemon::workers::churn::LINES_PER_WINDOW)
//! a minute per module, so a chatty module cannot fill the journal. A
//! module's stdout and stderr stay in its own log (`arcella logs`).

use crate::daemon::workers::churn::{Churn, Verdict};
use crate::protocol::{LogLevel, LogLine, LogStream};
use std::time::Instant;

/// The `log` target of a module's `critical` lines: the daemon's logger
/// gives them journald priority 2 (`log` has no level above error).
pub const CRITICAL_TARGET: &str = "arcella::critical";

/// Passes `line` on to the daemon's log if it is one that belongs there.
pub(super) fn forward(churn: &Churn, line: &LogLine) {
    let LogStream::Logging(level) = line.stream else { return };
    if level < LogLevel::Warn {
        return;
    }
    let say = || match level {
        LogLevel::Critical => log::error!(target: CRITICAL_TARGET, "module `{}`: {}", line.module, line.text),
        LogLevel::Error => log::error!("module `{}`: {}", line.module, line.text),
        _ => log::warn!("module `{}`: {}", line.module, line.text),
    };
    match churn.admit(&line.module, Instant::now()) {
        Verdict::Log { left_out } => {
            if left_out > 0 {
                log::warn!(
                    "module `{}`: {left_out} more warn-or-worse lines were not copied here in the last minute \
                     (`arcella logs {} --level warn` has them)",
                    line.module,
                    line.module
                );
            }
            say();
        }
        Verdict::LogLast => {
            say();
            log::warn!(
                "module `{}` logs warnings often: its next ones are copied here again after a minute",
                line.module
            );
        }
        Verdict::LeaveOut => {}
    }
}
