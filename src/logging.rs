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
            let priority = match level {
                // A module's `wasi:logging` critical line (supervisor/journal.rs).
                log::Level::Error if record.target() == arcella_core::daemon::supervisor::journal::CRITICAL_TARGET => 2,
                log::Level::Error => 3,
                log::Level::Warn => 4,
                log::Level::Info => 6,
                log::Level::Debug | log::Level::Trace => 7,
            };
            writeln!(out, "<{priority}>{}: {}", record.target(), record.args())
        } else {
            writeln!(out, "{level:<5} {}: {}", record.target(), record.args())
        }
    });
    builder.init();
}
