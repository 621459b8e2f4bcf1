//! Everything `arcella` prints on stdout goes through [`line`] (the
//! `outln!` macro): a reader that stops reading (`arcella logs x | head`)
//! ends the command quietly with exit 0 instead of a panic — it has what it
//! wanted. Any other write failure (a full disk behind a redirect) is an
//! error, exit 1.

use std::io::Write;

/// `println!` that survives a closed stdout.
macro_rules! outln {
    () => {
        $crate::output::line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::output::line(format_args!($($arg)*))
    };
}
pub(crate) use outln;

/// Writes one line to stdout (line-buffered, so it is flushed at once).
pub fn line(args: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{args}").and_then(|()| out.flush()) {
        failed(&e);
    }
}

/// Writes bytes as they are (a completion script, a man page).
pub fn bytes(data: &[u8]) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(data).and_then(|()| out.flush()) {
        failed(&e);
    }
}

fn failed(error: &std::io::Error) -> ! {
    if error.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    // stderr may be gone too; nothing more to say then.
    let _ = writeln!(std::io::stderr(), "error: cannot write to stdout: {error}");
    std::process::exit(i32::from(crate::exit::FAILURE));
}
