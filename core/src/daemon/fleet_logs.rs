//! Which module log lines go to the fleet (the MQTT agent's `events`
//! topic): by level, per module (`[logs] forward` in its deployment, else
//! the device's `[mqtt] logs`, off by default), and at most
//! `[mqtt] logs_per_minute` lines a minute per module. Lines over the
//! limit are counted, and the count goes out before the next line that
//! may (docs/mqtt.md, "Log forwarding"). State changes are not filtered.

use crate::manifest::logs::LogForward;
use crate::protocol::{LogLine, LogStream};
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

/// The fleet's log filter of one daemon.
#[derive(Debug)]
pub struct FleetLogs {
    /// `[mqtt] logs`.
    device: LogForward,
    /// `[mqtt] logs_per_minute`.
    per_minute: u32,
    modules: Mutex<HashMap<String, Budget>>,
}

/// One module's rule and its token bucket.
#[derive(Debug)]
struct Budget {
    /// Its deployment's `[logs] forward`, if set.
    forward: Option<LogForward>,
    tokens: f64,
    refilled: Instant,
    dropped: u64,
}

impl FleetLogs {
    pub fn new(device: LogForward, per_minute: u32) -> Self {
        Self {
            device,
            per_minute: per_minute.max(1),
            modules: Mutex::new(HashMap::new()),
        }
    }

    /// A module (re)starts with this deployment rule; its budget is kept.
    pub fn set_module(&self, module: &str, forward: Option<LogForward>) {
        let mut modules = self.modules.lock().unwrap_or_else(PoisonError::into_inner);
        match modules.get_mut(module) {
            Some(budget) => budget.forward = forward,
            None => {
                modules.insert(
                    module.to_owned(),
                    Budget {
                        forward,
                        tokens: f64::from(self.per_minute),
                        refilled: Instant::now(),
                        dropped: 0,
                    },
                );
            }
        }
    }

    /// A module is gone.
    pub fn remove_module(&self, module: &str) {
        self.modules
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(module);
    }

    /// The lines to send for `line`: none, the line, or the count of the
    /// lines dropped over the limit before it and then the line.
    pub fn admit(&self, line: &LogLine) -> Vec<LogLine> {
        self.admit_at(line, Instant::now())
    }

    fn admit_at(&self, line: &LogLine, now: Instant) -> Vec<LogLine> {
        let mut modules = self.modules.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(budget) = modules.get_mut(&line.module) else {
            // Not started under this filter (its first lines race its
            // registration): the device's rule, no budget yet.
            return match self.device.admits(line.stream.level()) {
                true => vec![line.clone()],
                false => Vec::new(),
            };
        };
        if !budget.forward.unwrap_or(self.device).admits(line.stream.level()) {
            return Vec::new();
        }
        let rate = f64::from(self.per_minute) / 60.0;
        let elapsed = now.saturating_duration_since(budget.refilled).as_secs_f64();
        budget.tokens = (budget.tokens + elapsed * rate).min(f64::from(self.per_minute));
        budget.refilled = now;
        if budget.tokens < 1.0 {
            budget.dropped += 1;
            return Vec::new();
        }
        budget.tokens -= 1.0;
        let mut out = Vec::with_capacity(2);
        if budget.dropped > 0 {
            out.push(LogLine {
                module: line.module.clone(),
                stream: LogStream::Daemon,
                at_ms: line.at_ms,
                text: format!(
                    "{} log line(s) not sent to the fleet: over [mqtt] logs_per_minute = {} \
                     (`arcella logs {}` on the device has them)",
                    budget.dropped, self.per_minute, line.module
                ),
            });
            budget.dropped = 0;
        }
        out.push(line.clone());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::LogLevel;
    use std::time::Duration;

    fn line(module: &str, stream: LogStream, text: &str) -> LogLine {
        LogLine {
            module: module.into(),
            stream,
            at_ms: 1,
            text: text.into(),
        }
    }

    #[test]
    fn off_by_default_and_a_deployment_turns_its_module_on_at_a_level() {
        let logs = FleetLogs::new(LogForward::Off, 60);
        logs.set_module("quiet", None);
        logs.set_module("chatty", Some(LogForward::AtLeast(LogLevel::Warn)));
        assert!(logs.admit(&line("quiet", LogStream::Stderr, "oops")).is_empty());
        assert!(logs.admit(&line("chatty", LogStream::Stdout, "info line")).is_empty());
        assert_eq!(logs.admit(&line("chatty", LogStream::Stderr, "warn line")).len(), 1);
        let error = LogStream::Logging(LogLevel::Error);
        assert_eq!(logs.admit(&line("chatty", error, "error line")).len(), 1);
    }

    #[test]
    fn a_device_level_applies_to_modules_without_their_own_and_off_overrides_it() {
        let logs = FleetLogs::new(LogForward::AtLeast(LogLevel::Info), 60);
        logs.set_module("plain", None);
        logs.set_module("muted", Some(LogForward::Off));
        assert_eq!(logs.admit(&line("plain", LogStream::Stdout, "tick")).len(), 1);
        let debug = LogStream::Logging(LogLevel::Debug);
        assert!(logs.admit(&line("plain", debug, "detail")).is_empty());
        assert!(logs.admit(&line("muted", LogStream::Stderr, "oops")).is_empty());
    }

    #[test]
    fn a_flood_is_cut_at_the_rate_and_its_count_sent_before_the_next_line() {
        let logs = FleetLogs::new(LogForward::AtLeast(LogLevel::Trace), 60);
        logs.set_module("flood", None);
        let start = Instant::now();
        let sent: usize = (0..1000)
            .map(|i| {
                logs.admit_at(&line("flood", LogStream::Stdout, &i.to_string()), start)
                    .len()
            })
            .sum();
        // The bucket holds a minute's worth.
        assert_eq!(sent, 60);
        // One second later, one line's worth has come back: the count of
        // the 940 dropped goes first.
        let next = logs.admit_at(
            &line("flood", LogStream::Stdout, "after"),
            start + Duration::from_secs(1),
        );
        assert_eq!(next.len(), 2, "{next:?}");
        assert_eq!(next[0].stream, LogStream::Daemon);
        assert!(next[0].text.starts_with("940 log line(s) not sent"), "{}", next[0].text);
        assert_eq!(next[1].text, "after");
        // Another module has its own budget.
        logs.set_module("other", None);
        assert_eq!(logs.admit_at(&line("other", LogStream::Stdout, "x"), start).len(), 1);
    }
}
