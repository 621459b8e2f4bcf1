//! `arcella run FILE [limits] [grants] [--grace D] [-- ARGS]`
//!
//! SIGINT and SIGTERM raise the guest's shutdown call, as `arcella stop`
//! does for the daemon's modules; a guest that imports it gets `--grace` to
//! finish, then (like one that does not import it, at once) it is ended
//! with exit 128 + the signal's number.

use super::{CmdError, read_input};
use crate::cli::RunArgs;
use crate::exit::{self, Failure};
#[cfg(not(feature = "compiler"))]
use arcella_core::artifact::LoadError;
use arcella_core::artifact::{InputKind, Program, format, load};
use arcella_core::engine::new_engine;
use arcella_core::run::{Grants, Invocation, Limits, Output, StopFlag, hears_shutdown, run_blocking};
use arcella_core::wasmtime::Engine;
use arcella_core::{ArtifactTarget, EngineProfile};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The guest's exit code, or why it did not finish by itself.
pub fn execute(args: &RunArgs) -> Result<ExitCode, Failure> {
    let (engine, profile, program) =
        prepare(&args.file).map_err(|err| Failure::with_code(exit::CANNOT_RUN, "cannot_run", err))?;
    let name = module_name(&args.file);
    let stop: StopFlag = Arc::new(AtomicBool::new(false));
    let grace = if hears_shutdown(&engine, &program) {
        args.grace
    } else {
        Duration::ZERO
    };
    watch_signals(&name, stop.clone(), grace).map_err(|e| {
        Failure::with_code(
            exit::CANNOT_RUN,
            "cannot_run",
            format!("{name}: cannot watch signals: {e}"),
        )
    })?;
    let mut argv = vec![name.clone()];
    argv.extend(args.args.iter().cloned());
    let grants = Grants {
        args: argv,
        env: args.env.clone(),
        dirs: args.dirs.clone(),
    };
    let limits = Limits {
        fuel: args.fuel,
        max_memory: args.max_memory,
        timeout: args.timeout,
    };
    let invocation = Invocation {
        name: &name,
        program: &program,
        grants: &grants,
        limits: &limits,
        profile: &profile,
        output: &Output::Inherit,
        entrypoint: None,
        stop: Some(stop),
        health: None,
    };
    match run_blocking(&engine, &invocation) {
        Ok(code) => Ok(exit::for_guest(code)),
        Err(err) => Err(Failure::from(&err)),
    }
}

/// On SIGINT or SIGTERM: raises `stop`, waits `grace` (or a second
/// signal), then ends the process with 128 + the signal's number.
fn watch_signals(name: &str, stop: StopFlag, grace: Duration) -> std::io::Result<()> {
    use async_signal::{Signal, Signals};
    use smol::stream::StreamExt;
    let mut signals = Signals::new([Signal::Int, Signal::Term])?;
    let name = name.to_owned();
    std::thread::Builder::new().name("signals".into()).spawn(move || {
        smol::block_on(async {
            let Some(Ok(signal)) = signals.next().await else {
                return;
            };
            let (number, signal) = match signal {
                Signal::Int => (2, "SIGINT"),
                _ => (15, "SIGTERM"),
            };
            stop.store(true, Ordering::Relaxed);
            if !grace.is_zero() {
                eprintln!(
                    "arcella: {signal}: asked {name} to stop; it has {} (another signal ends it now)",
                    arcella_core::run::humanize(grace)
                );
                smol::future::or(
                    async {
                        smol::Timer::after(grace).await;
                    },
                    async {
                        signals.next().await;
                    },
                )
                .await;
                eprintln!("arcella: {name} did not stop in time; ending it");
            }
            std::process::exit(i32::from(exit::SIGNALLED) + number);
        });
    })?;
    Ok(())
}

fn module_name(path: &Path) -> String {
    path.file_name()
        .map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
}

/// Loads `path` into an engine that can run it.
fn prepare(path: &Path) -> Result<(Engine, EngineProfile, Program), CmdError> {
    let bytes = read_input(path)?;
    let format_err = |source| CmdError::Format {
        path: path.display().to_string(),
        source,
    };
    match InputKind::of(&bytes) {
        InputKind::Artifact => {
            // The artifact's target picks the engine (a pulley64 artifact
            // runs in the interpreter); every other setting must match ours.
            let header = format::decode(&bytes).map_err(format_err)?.header;
            let target = ArtifactTarget::from_resolved(&header.fingerprint.target);
            let profile = if target.runs_here() {
                EngineProfile::default().with_target(target)
            } else {
                EngineProfile::default()
            };
            let engine = new_engine(&profile)?;
            let program = load::load_bytes(&engine, &profile, &bytes, path)?;
            Ok((engine, profile, program))
        }
        InputKind::Wasm(_) | InputKind::Wat => compile_here(path, &bytes),
        _ if bytes.is_empty() => Err(format_err(arcella_core::artifact::FormatError::Empty)),
        other => Err(format_err(arcella_core::artifact::FormatError::NotAnArtifact(other))),
    }
}

#[cfg(feature = "compiler")]
fn compile_here(path: &Path, bytes: &[u8]) -> Result<(Engine, EngineProfile, Program), CmdError> {
    let profile = EngineProfile::default();
    let engine = new_engine(&profile)?;
    let program = load::compile_in_memory(&engine, bytes, &module_name(path))?;
    Ok((engine, profile, program))
}

#[cfg(not(feature = "compiler"))]
fn compile_here(path: &Path, _bytes: &[u8]) -> Result<(Engine, EngineProfile, Program), CmdError> {
    Err(CmdError::Load(LoadError::Wasmtime {
        path: path.display().to_string(),
        message: format!(
            "this arcella has no compiler (a device build), so it only runs precompiled artifacts; \
             on a build host run: arcella compile {} -o {} --target {}",
            path.display(),
            path.with_extension("cwasm").display(),
            arcella_core::engine::HOST_TRIPLE
        ),
    }))
}
