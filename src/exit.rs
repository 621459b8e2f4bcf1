//! Every exit code `arcella` uses, and how a failure is reported, in one
//! place (documented in docs/cli.md).
//!
//! A WASI guest can only exit with 0..=125 (wasmtime-wasi refuses larger
//! statuses), so Arcella's own verdicts sit above that and never collide
//! with a guest's code.

use arcella_core::run::RunError;
use std::process::ExitCode;

/// `arcella` itself failed: a bad argument, an unreadable or invalid input,
/// an artifact for another engine. Also used by `compile`.
pub const FAILURE: u8 = 1;
/// A usage error: an unknown verb or option, a malformed value (clap's
/// own code).
pub const USAGE: u8 = 2;
/// `fleet deploy`/`undeploy`: not every targeted online device converged.
#[cfg(feature = "mqtt")]
pub const NOT_CONVERGED: u8 = 3;
/// The guest could not be loaded or started (`run` only).
pub const CANNOT_RUN: u8 = 126;
/// The guest trapped (unreachable, out-of-bounds access, …).
pub const TRAP: u8 = 200;
/// The guest used up its fuel budget (`--fuel`).
pub const FUEL: u8 = 201;
/// The guest went past a resource limit: memory (`--max-memory`), table
/// elements or host handles.
pub const MEMORY: u8 = 202;
/// The guest overflowed its wasm stack.
pub const STACK: u8 = 203;
/// The guest ran past `--timeout`.
pub const TIMEOUT: u8 = 204;

/// A failed command as it is reported: its exit code, a kind a script can
/// act on (docs/cli.md lists them), and a message a person can.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub kind: &'static str,
    pub message: String,
}

impl Failure {
    /// A failure of `arcella` itself (exit 1).
    pub fn new(kind: &'static str, message: impl std::fmt::Display) -> Self {
        Self::with_code(FAILURE, kind, message)
    }

    pub fn with_code(code: u8, kind: &'static str, message: impl std::fmt::Display) -> Self {
        Self {
            code,
            kind,
            message: message.to_string(),
        }
    }

    /// Prints the failure on stderr, `error: …` or with `--json` one
    /// `{"error": {…}}` line, and returns its exit code.
    pub fn report(&self, json: bool) -> ExitCode {
        if json {
            let body = crate::cmd::json::Error {
                error: crate::cmd::json::ErrorBody {
                    kind: self.kind,
                    message: &self.message,
                    exit_code: self.code,
                },
            };
            match serde_json::to_string(&body) {
                Ok(text) => eprintln!("{text}"),
                Err(_) => eprintln!("error: {}", self.message),
            }
        } else {
            eprintln!("error: {}", self.message);
        }
        ExitCode::from(self.code)
    }
}

/// A guest that did not finish by itself, as a failure.
impl From<&RunError> for Failure {
    fn from(err: &RunError) -> Self {
        let (code, kind) = match err {
            RunError::Fuel { .. } => (FUEL, "fuel"),
            RunError::Memory { .. }
            | RunError::HostMemory { .. }
            | RunError::Tables { .. }
            | RunError::Handles { .. } => (MEMORY, "memory"),
            RunError::Stack { .. } => (STACK, "stack"),
            RunError::Timeout { .. } => (TIMEOUT, "timeout"),
            RunError::Trap { .. } | RunError::Call { .. } => (TRAP, "trap"),
            RunError::NotACommand { .. }
            | RunError::Link { .. }
            | RunError::Grant { .. }
            | RunError::Setup { .. }
            | RunError::NotMetered { .. }
            | RunError::Remote { .. } => (CANNOT_RUN, "cannot_run"),
        };
        Failure::with_code(code, kind, err)
    }
}

/// The process exit code for a guest's own exit status.
pub fn for_guest(code: i32) -> ExitCode {
    // Guests exit with 0..=125; anything else would be a wasmtime change.
    ExitCode::from(u8::try_from(code).unwrap_or(FAILURE))
}
