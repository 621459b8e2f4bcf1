//! `logs --level`: which lines are shown.

use arcella_core::protocol::{LogLevel, LogLine};

/// A `wasi:logging` level as `--level` takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
    Critical,
}

impl From<Level> for LogLevel {
    fn from(level: Level) -> Self {
        match level {
            Level::Trace => Self::Trace,
            Level::Debug => Self::Debug,
            Level::Info => Self::Info,
            Level::Warn => Self::Warn,
            Level::Error => Self::Error,
            Level::Critical => Self::Critical,
        }
    }
}

/// Whether `line` is shown under `--level at_least` (every line without it).
pub fn shown(line: &LogLine, at_least: Option<Level>) -> bool {
    at_least.is_none_or(|min| line.stream.level() >= LogLevel::from(min))
}
