//! `arcella-worker`: the process that hosts the untrusted modules of one
//! worker group. The daemon starts it by spawn + exec, already jailed
//! (see docs/security.md); it finishes its own sandbox (stray descriptors,
//! filesystem walls: Landlock or a mount namespace, seccomp) before it loads any guest, then serves the
//! daemon over the IPC socket on fd 3 until the daemon closes it.

mod mount_walls;
mod programs;
pub mod seccomp;
mod serve;
mod template;
pub mod walls;

use arcella_core::sys::process::{IPC_FD, close_descriptors_above_but};
use arcella_core::sys::seqpacket::SeqPacket;
use std::process::ExitCode;
use std::sync::Arc;

/// Why the worker stopped serving.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("arcella-worker is started by the arcella daemon, not by hand: fd {IPC_FD} is not its IPC socket")]
    NoLink,
    #[error("the IPC link failed: {0}")]
    Link(#[from] std::io::Error),
    #[error("the daemon opened with {0} instead of Hello")]
    NoHello(String),
    #[error("{0}")]
    Refused(String),
    #[error("cannot make the worker non-dumpable (prctl PR_SET_DUMPABLE): {0}")]
    Undumpable(#[source] std::io::Error),
}

/// The worker's entry point.
pub fn main() -> ExitCode {
    // The daemon starts workers with `--group NAME`; `--version` is
    // for people and packaging checks.
    if std::env::args_os().nth(1).is_some_and(|a| a == "--version") {
        println!("arcella-worker {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let template = std::env::args_os().nth(1).is_some_and(|a| a == "--template");
    match if template { run_template() } else { run(None) } {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("arcella-worker: {e}");
            ExitCode::from(2)
        }
    }
}

/// A template (see `template.rs`): serves the daemon until it closes the
/// link; in each child it forks, goes on as a worker.
fn run_template() -> Result<(), WorkerError> {
    arcella_core::sys::memory::limit_malloc_arenas();
    arcella_core::sys::process::make_undumpable().map_err(WorkerError::Undumpable)?;
    init_log();
    if !arcella_core::sys::fs::is_socket(IPC_FD) {
        return Err(WorkerError::NoLink);
    }
    close_descriptors_above_but(IPC_FD, &[])?;
    // SAFETY: fd 3 is the socket the daemon passed (checked above), and
    // nothing else in this process owns it.
    let link = unsafe { SeqPacket::from_raw_fd(IPC_FD) };
    match template::serve(&link)? {
        None => Ok(()),
        Some(preloaded) => {
            // The child: fd 3 is its own link now (the fork put it there,
            // closing the template's); `run` takes it over by number.
            let _ = std::os::fd::IntoRawFd::into_raw_fd(link.into_owned_fd());
            run(Some(preloaded))
        }
    }
}

/// A worker: `preloaded` is what a template's child inherited.
fn run(preloaded: Option<serve::Preloaded>) -> Result<(), WorkerError> {
    let forked = preloaded.is_some();
    // Before any thread starts: one malloc arena, not 64 MiB per thread.
    arcella_core::sys::memory::limit_malloc_arenas();
    // exec (or a uid change) made this process dumpable again: before
    // anything else, so no other process of this uid (another group's
    // worker) can attach to it.
    arcella_core::sys::process::make_undumpable().map_err(WorkerError::Undumpable)?;
    if !forked {
        init_log();
    }
    if !arcella_core::sys::fs::is_socket(IPC_FD) {
        return Err(WorkerError::NoLink);
    }
    // Nothing the daemon's or the template's process held may leak into
    // the sandbox, but the files an inherited program maps.
    let held = preloaded.as_ref().map_or(&[][..], |p| &p.held[..]);
    close_descriptors_above_but(IPC_FD, held)?;
    // SAFETY: fd 3 is the socket the daemon passed (checked above), and
    // nothing else in this process owns it.
    let link = unsafe { SeqPacket::from_raw_fd(IPC_FD) };
    // The handshake raises the walls while this is the only thread.
    let greeted = serve::greet(&link, preloaded)?;
    let executor = Arc::new(smol::Executor::new());
    let serving = serve::serve(link, greeted, executor.clone());
    // wasmtime-wasi's host calls need a tokio context, as in the daemon.
    smol::block_on(async_compat::Compat::new(between_tasks(&executor, serving)))
}

/// The environment is empty (the daemon cleared it): a fixed level, and
/// stderr is a pipe the daemon reads into its own log.
fn init_log() {
    env_logger::Builder::new()
        .filter_level(log::LevelFilter::Info)
        .format_timestamp(None)
        .init();
}

/// Task time after which the daemon's messages and the reactor get their
/// turn again.
const TURN: std::time::Duration = std::time::Duration::from_millis(10);

/// Runs `serving` (the loop reading the daemon's messages) and the
/// executor's tasks (guests, relays), coming back to `serving` and to the
/// reactor once tasks have run for [`TURN`]. `Executor::run` comes back
/// only every 200 tasks: beside a guest that spins (one poll per 10 ms
/// epoch) that is 2 s, and the daemon's pings, stops and cancels waited
/// that long.
async fn between_tasks<T>(executor: &smol::Executor<'static>, serving: impl std::future::Future<Output = T>) -> T {
    let tasks = async {
        loop {
            let turn = std::time::Instant::now();
            while turn.elapsed() < TURN {
                executor.tick().await;
            }
            // Woken at once: the runtime polls the reactor, then `serving`.
            smol::future::yield_now().await;
        }
    };
    smol::future::or(serving, tasks).await
}
