//! Guest stdout/stderr captured into a bounded ring of lines.
//!
//! The ring holds at most [`RING_LINES`] lines of at most [`LINE_MAX`]
//! bytes each, so a chatty guest costs a fixed amount of memory however
//! long it runs. Writes never block the guest: a full ring drops its oldest
//! line.

use crate::protocol::now_ms;
use crate::protocol::{LogLine, LogStream};
use bytes::Bytes;
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Lines kept per module.
pub const RING_LINES: usize = 256;
/// Longest line kept; longer lines are cut and marked with `…`.
pub const LINE_MAX: usize = 1024;

/// Called with every completed line (the daemon forwards them to
/// followers). Must not block.
pub type LineListener = Arc<dyn Fn(&LogLine) + Send + Sync>;

/// The last lines a module wrote.
#[derive(Debug)]
pub struct LogRing {
    module: String,
    lines: VecDeque<LogLine>,
    capacity: usize,
}

impl LogRing {
    pub fn new(module: &str) -> Self {
        Self {
            module: module.to_owned(),
            lines: VecDeque::with_capacity(16),
            capacity: RING_LINES,
        }
    }

    /// Appends a line, dropping the oldest when full.
    pub fn push(&mut self, stream: LogStream, text: &str) -> LogLine {
        let line = LogLine {
            module: self.module.clone(),
            stream,
            at_ms: now_ms(),
            text: truncate(text),
        };
        if self.capacity == 0 {
            return line;
        }
        if self.lines.len() == self.capacity {
            self.lines.pop_front();
        }
        self.lines.push_back(line.clone());
        line
    }

    /// The last `n` lines (all if `n` is 0), oldest first.
    pub fn tail(&self, n: usize) -> Vec<LogLine> {
        let skip = if n == 0 { 0 } else { self.lines.len().saturating_sub(n) };
        self.lines.iter().skip(skip).cloned().collect()
    }
}

fn truncate(text: &str) -> String {
    if text.len() <= LINE_MAX {
        return text.to_owned();
    }
    let mut cut = LINE_MAX;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &text[..cut])
}

/// A shared ring plus whoever wants to hear about new lines.
#[derive(Clone)]
pub struct LogBook {
    ring: Arc<Mutex<LogRing>>,
    listener: Option<LineListener>,
}

impl std::fmt::Debug for LogBook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogBook").finish_non_exhaustive()
    }
}

impl LogBook {
    pub fn new(module: &str, listener: Option<LineListener>) -> Self {
        Self {
            ring: Arc::new(Mutex::new(LogRing::new(module))),
            listener,
        }
    }

    /// A book that keeps no lines and only hands each to `listener` (a
    /// worker relays lines to the daemon, which keeps them).
    pub fn relay(module: &str, listener: LineListener) -> Self {
        let mut ring = LogRing::new(module);
        ring.capacity = 0;
        Self {
            ring: Arc::new(Mutex::new(ring)),
            listener: Some(listener),
        }
    }

    /// Records a line written by the daemon about the module.
    pub fn note(&self, text: &str) {
        self.record(LogStream::Daemon, text);
    }

    pub fn tail(&self, n: usize) -> Vec<LogLine> {
        self.ring.lock().unwrap_or_else(PoisonError::into_inner).tail(n)
    }

    /// Records a line (one a worker relayed, or the daemon's own).
    pub fn record(&self, stream: LogStream, text: &str) {
        let line = self
            .ring
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(stream, text);
        if let Some(listener) = &self.listener {
            listener(&line);
        }
    }

    /// A sink for one of the guest's output streams.
    pub fn sink(&self, stream: LogStream) -> LogSink {
        LogSink {
            book: self.clone(),
            stream,
            partial: Arc::new(Mutex::new(Vec::new())),
        }
    }
}

/// A guest output stream that splits bytes into lines for a [`LogBook`].
#[derive(Debug, Clone)]
pub struct LogSink {
    book: LogBook,
    stream: LogStream,
    partial: Arc<Mutex<Vec<u8>>>,
}

impl LogSink {
    fn write_bytes(&self, bytes: &[u8]) {
        let mut partial = self.partial.lock().unwrap_or_else(PoisonError::into_inner);
        for &byte in bytes {
            if byte == b'\n' {
                self.book.record(self.stream, &String::from_utf8_lossy(&partial));
                partial.clear();
            } else if partial.len() < LINE_MAX * 4 {
                partial.push(byte);
            }
        }
    }

    /// Emits a trailing line that had no newline (at exit).
    pub fn flush_partial(&self) {
        let mut partial = self.partial.lock().unwrap_or_else(PoisonError::into_inner);
        if !partial.is_empty() {
            self.book.record(self.stream, &String::from_utf8_lossy(&partial));
            partial.clear();
        }
    }
}

impl IsTerminal for LogSink {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogSink {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for LogSink {
    async fn ready(&mut self) {}
}

impl OutputStream for LogSink {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.write_bytes(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

impl tokio::io::AsyncWrite for LogSink {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        self.write_bytes(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_keeps_the_newest_lines() {
        let mut ring = LogRing::new("m");
        for i in 0..RING_LINES + 10 {
            ring.push(LogStream::Stdout, &format!("line {i}"));
        }
        let all = ring.tail(0);
        assert_eq!(all.len(), RING_LINES);
        assert_eq!(all[0].text, "line 10");
        assert_eq!(ring.tail(2)[1].text, format!("line {}", RING_LINES + 9));
    }

    #[test]
    fn long_lines_are_cut_on_a_char_boundary() {
        let mut ring = LogRing::new("m");
        let line = ring.push(LogStream::Stdout, &"é".repeat(LINE_MAX));
        assert!(line.text.len() <= LINE_MAX + "…".len());
        assert!(line.text.ends_with('…'));
    }

    #[test]
    fn sinks_split_writes_into_lines() {
        let book = LogBook::new("m", None);
        let sink = book.sink(LogStream::Stderr);
        sink.write_bytes(b"one\ntw");
        sink.write_bytes(b"o\nthree");
        assert_eq!(book.tail(0).len(), 2);
        sink.flush_partial();
        let texts: Vec<_> = book.tail(0).into_iter().map(|l| l.text).collect();
        assert_eq!(texts, ["one", "two", "three"]);
        assert!(book.tail(0).iter().all(|l| l.stream == LogStream::Stderr));
    }
}
