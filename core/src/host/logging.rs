//! `wasi:logging/logging@0.1.0-draft` (wit/deps/logging, vendored from
//! WebAssembly/wasi-logging; no wasmtime crate implements it): each call
//! becomes a line of the module's log with its level, `context: message`
//! (just `message` when the context is empty), cut to the log's line
//! length like any other line (run/capture.rs).

use super::ComponentState;
use crate::protocol::{LogLevel, LogStream};
use wasmtime::component::{HasSelf, Linker};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit/deps/logging",
        world: "wasi:logging/imports",
    });
}

use bindings::wasi::logging::logging;

/// The interface's name as a component imports it.
pub const INTERFACE: &str = "wasi:logging/logging@0.1.0-draft";

/// The longest context kept, in bytes; the rest of the line is the message.
pub const MAX_CONTEXT: usize = 128;

impl From<logging::Level> for LogLevel {
    fn from(level: logging::Level) -> Self {
        match level {
            logging::Level::Trace => Self::Trace,
            logging::Level::Debug => Self::Debug,
            logging::Level::Info => Self::Info,
            logging::Level::Warn => Self::Warn,
            logging::Level::Error => Self::Error,
            logging::Level::Critical => Self::Critical,
        }
    }
}

/// The text of one line: `context: message`.
pub fn line_text(context: &str, message: &str) -> String {
    if context.is_empty() {
        return message.to_owned();
    }
    format!("{}: {message}", &context[..context.floor_char_boundary(MAX_CONTEXT)])
}

impl logging::Host for ComponentState {
    fn log(&mut self, level: logging::Level, context: String, message: String) {
        let level = LogLevel::from(level);
        let text = line_text(&context, &message);
        match &self.services.logs {
            Some(book) => book.record(LogStream::Logging(level), &text),
            // `arcella run`: the terminal is the log.
            None => eprintln!("[{}] {text}", level.word()),
        }
    }
}

/// Adds `log`.
pub fn link(linker: &mut Linker<ComponentState>) -> wasmtime::Result<()> {
    logging::add_to_linker::<_, HasSelf<ComponentState>>(linker, |state| state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_context_is_cut_on_a_char_boundary() {
        assert_eq!(line_text("", "m"), "m");
        assert_eq!(line_text("db", "down"), "db: down");
        let text = line_text(&"é".repeat(MAX_CONTEXT), "m");
        let (context, message) = text.rsplit_once(": ").unwrap();
        assert!(context.len() <= MAX_CONTEXT && message == "m", "{text}");
    }
}
