//! Logs to stderr through `log`: `<N>` syslog priorities when stderr is
//! the journal (systemd sets JOURNAL_STREAM), `LEVEL target: message`
//! otherwise. The level comes from RUST_LOG, else from the config.

use std::io::Write;

pub fn init(default_level: &str) {
    let journal = std::env::var_os("JOURNAL_STREAM").is_some();
    let mut builder = env_logger::Builder::new();
    builder.parse_filters(default_level);
    if let Ok(filters) = std::env::var("RUST_LOG") {
        builder.parse_filters(&filters);
    }
    builder.format(move |out, record| {
        let level = record.level();
        if journal {
            let priority = priority(level, record.target());
            writeln!(out, "<{priority}>{}: {}", record.target(), record.args())
        } else {
            writeln!(out, "{level:<5} {}: {}", record.target(), record.args())
        }
    });
    builder.init();
}

/// The sd-daemon priority of a line: a module's `wasi:logging` critical
/// line (supervisor/journal.rs) is 2, then error 3, warn 4, info 6, debug
/// and trace 7.
fn priority(level: log::Level, target: &str) -> u8 {
    match level {
        log::Level::Error if target == arcella_core::daemon::supervisor::journal::CRITICAL_TARGET => 2,
        log::Level::Error => 3,
        log::Level::Warn => 4,
        log::Level::Info => 6,
        log::Level::Debug | log::Level::Trace => 7,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_critical_lines_get_the_critical_priority() {
        use arcella_core::daemon::supervisor::journal::CRITICAL_TARGET;
        assert_eq!(priority(log::Level::Error, CRITICAL_TARGET), 2);
        assert_eq!(priority(log::Level::Error, "arcella_core::daemon"), 3);
        assert_eq!(priority(log::Level::Warn, CRITICAL_TARGET), 4);
        assert_eq!(priority(log::Level::Info, "x"), 6);
        assert_eq!(priority(log::Level::Trace, "x"), 7);
    }
}
