//! Every exit code `arcella` uses, in one place (documented in
//! docs/cli.md).
//!
//! A WASI guest can only exit with 0..=125 (wasmtime-wasi refuses larger
//! statuses), so Arcella's own verdicts sit above that and never collide
//! with a guest's code.

use arcella_core::run::RunError;
use std::process::ExitCode;

/// `arcella` itself failed: a bad argument, an unreadable or invalid input,
/// an artifact for another engine. Also used by `compile`.
pub const FAILURE: u8 = 1;
/// `fleet deploy`/`undeploy`: not every targeted online device converged.
pub const NOT_CONVERGED: u8 = 3;
/// The guest could not be loaded or started (`run` only).
pub const CANNOT_RUN: u8 = 126;
/// The guest trapped (unreachable, out-of-bounds access, …).
pub const TRAP: u8 = 200;
/// The guest used up its fuel budget (`--fuel`).
pub const FUEL: u8 = 201;
/// The guest asked for more memory than `--max-memory`.
pub const MEMORY: u8 = 202;
/// The guest overflowed its wasm stack.
pub const STACK: u8 = 203;
/// The guest ran past `--timeout`.
pub const TIMEOUT: u8 = 204;

/// The process exit code for a guest that did not finish by itself.
pub fn for_run_error(err: &RunError) -> ExitCode {
    ExitCode::from(match err {
        RunError::Fuel { .. } => FUEL,
        RunError::Memory { .. } | RunError::HostMemory { .. } | RunError::Tables { .. } => MEMORY,
        RunError::Stack { .. } => STACK,
        RunError::Timeout { .. } => TIMEOUT,
        RunError::Trap { .. } => TRAP,
        RunError::NotACommand { .. }
        | RunError::Grant { .. }
        | RunError::Setup { .. }
        | RunError::NotMetered { .. }
        | RunError::Remote { .. } => CANNOT_RUN,
    })
}

/// The process exit code for a guest's own exit status.
pub fn for_guest(code: i32) -> ExitCode {
    // Guests exit with 0..=125; anything else would be a wasmtime change.
    ExitCode::from(u8::try_from(code).unwrap_or(FAILURE))
}
