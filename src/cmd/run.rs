//! `arcella run FILE [limits] [grants] [-- ARGS]`

use super::{CmdError, read_input};
use crate::cli::RunArgs;
use crate::exit;
#[cfg(not(feature = "compiler"))]
use arcella_core::artifact::LoadError;
use arcella_core::artifact::{InputKind, Program, format, load};
use arcella_core::engine::new_engine;
use arcella_core::run::{Grants, Invocation, Limits, Output, run_blocking};
use arcella_core::wasmtime::Engine;
use arcella_core::{ArtifactTarget, EngineProfile};
use std::path::Path;
use std::process::ExitCode;

pub fn execute(args: &RunArgs) -> ExitCode {
    let (engine, profile, program) = match prepare(&args.file) {
        Ok(loaded) => loaded,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(exit::CANNOT_RUN);
        }
    };
    let name = module_name(&args.file);
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
        stop: None,
        health: None,
    };
    match run_blocking(&engine, &invocation) {
        Ok(code) => exit::for_guest(code),
        Err(err) => {
            eprintln!("error: {err}");
            exit::for_run_error(&err)
        }
    }
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
