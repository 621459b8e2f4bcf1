//! `arcella run FILE [limits] [grants] [--grace D] [-- ARGS]`
//!
//! SIGINT and SIGTERM raise the guest's shutdown call, as `arcella stop`
//! does for the daemon's modules; a guest that imports it gets `--grace` to
//! finish, then (like one that does not import it, at once) it is ended
//! with exit 128 + the signal's number.

use super::CmdError;
use crate::cli::RunArgs;
use crate::exit::{self, Failure};
use arcella_core::EngineProfile;
#[cfg(not(feature = "compiler"))]
use arcella_core::artifact::LoadError;
use arcella_core::artifact::{ArtifactRef, InputKind, Program, format, load};
use arcella_core::engine::ArtifactTarget;
use arcella_core::engine::file_code::FileCode;
use arcella_core::engine::{new_engine, new_engine_with};
use arcella_core::host::HostServices;
use arcella_core::host::http::ServeGrant;
use arcella_core::host::network::NetworkRules;
use arcella_core::run::{Grants, Invocation, Limits, Output, StopFlag, hears_shutdown, run_blocking};
use arcella_core::sys::code_map::MappedFile;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

/// The guest's exit code, or why it did not finish by itself.
pub fn execute(args: &RunArgs) -> Result<ExitCode, Failure> {
    let (profile, program) = prepare(args).map_err(|err| Failure::with_code(exit::CANNOT_RUN, "cannot_run", err))?;
    let name = super::file_label(&args.file);
    let stop: StopFlag = Arc::new(AtomicBool::new(false));
    let grace = if hears_shutdown(&program) {
        args.grace
    } else {
        Duration::ZERO
    };
    arcella_core::sys::signals::on_termination(&name, stop.clone(), grace).map_err(|e| {
        Failure::with_code(
            exit::CANNOT_RUN,
            "cannot_run",
            format!("{name}: cannot watch signals: {e}"),
        )
    })?;
    let mut argv = vec![name.clone()];
    argv.extend(args.args.iter().cloned());
    let network = network_rules(args)?;
    if network.any() && matches!(program, Program::Module(_)) {
        return Err(Failure::with_code(
            exit::USAGE,
            "usage",
            format!(
                "{name} is a core module (WASI preview 1), which has no socket API; --connect, --listen, --udp \
                 and --lookup apply to components (WASI preview 2): rebuild it for wasm32-wasip2, or drop them"
            ),
        ));
    }
    let http = serve_grant(args, &name, &program)?;
    let grants = Grants {
        args: argv,
        env: args.env.clone(),
        dirs: args.dirs.clone(),
        network,
        http,
        subscribe: Vec::new(),
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
        provide: None,
        usage: None,
        host: &stderr_denials(),
    };
    match run_blocking(&invocation) {
        Ok(code) => Ok(exit::for_guest(code)),
        Err(err) => Err(Failure::from(&err)),
    }
}

/// `--serve-http` and its companions, checked; `--http-ca` trusted.
fn serve_grant(args: &RunArgs, name: &str, program: &Program) -> Result<Option<ServeGrant>, Failure> {
    let usage = |message: String| Failure::with_code(exit::USAGE, "usage", message);
    if let Some(file) = &args.http_ca {
        let pem = std::fs::read(file).map_err(|e| usage(format!("--http-ca {}: {e}", file.display())))?;
        arcella_core::host::http::check_roots(&pem)
            .and_then(|()| arcella_core::host::http::trust_roots(&pem))
            .map_err(|e| usage(format!("--http-ca {} {e}", file.display())))?;
    }
    let Some(listen) = &args.serve_http else {
        return Ok(None);
    };
    if !cfg!(feature = "http") {
        return Err(usage(
            "--serve-http: this build has no wasi:http (the `http` cargo feature)".to_owned(),
        ));
    }
    if matches!(program, Program::Module(_)) {
        return Err(usage(format!(
            "{name} is a core module (WASI preview 1), which has no HTTP API; --serve-http serves a component \
             exporting wasi:http/incoming-handler"
        )));
    }
    ServeGrant::new(listen, args.http_instances, args.http_timeout)
        .map(Some)
        .map_err(|(key, why)| {
            let flag = match key {
                "listen" => format!("--serve-http {listen:?}"),
                "instances" => format!("--http-instances {}", args.http_instances),
                _ => "--http-timeout".to_owned(),
            };
            usage(format!("{flag} {why}"))
        })
}

/// The network rules of `--connect`, `--listen`, `--udp`, `--lookup`
/// (each rule was checked by the argument parser already).
fn network_rules(args: &RunArgs) -> Result<NetworkRules, Failure> {
    NetworkRules::parse(&args.connect, &args.listen, &args.udp, args.lookup)
        .map_err(|bad| Failure::with_code(exit::USAGE, "usage", format!("--{bad}")))
}

/// Denials go to stderr, one line each: `arcella: denied network: ...`.
fn stderr_denials() -> HostServices {
    HostServices {
        denials: Some(Arc::new(|denial| eprintln!("arcella: {denial}"))),
        ..HostServices::default()
    }
}

/// Loads the file into an engine that can run it: the artifact's own
/// variant of the built-in profile (fuel metering and epoch checks as it
/// was compiled), read once and hashed once; native code runs where it was
/// read ([`load::load_read`]).
fn prepare(args: &RunArgs) -> Result<(EngineProfile, Program), CmdError> {
    let path = args.file.as_path();
    let read_err = |source| CmdError::Read {
        path: path.display().to_string(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(read_err)?;
    // Read whole from the open file, not opened again by path.
    let whole = |file: &mut std::fs::File| {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(file, &mut bytes)
            .map(|_| bytes)
            .map_err(read_err)
    };
    if !file.metadata().map_err(read_err)?.is_file() {
        // A pipe (`/dev/stdin`, `<(...)`) cannot be read at an offset.
        return prepare_bytes(args, &whole(&mut file)?);
    }
    let mut preamble = [0; format::PREAMBLE_LEN];
    let got = std::os::unix::fs::FileExt::read_at(&file, &mut preamble, 0).map_err(read_err)?;
    match format::code_offset(&preamble[..got]) {
        Some(code_offset) => {
            let read = MappedFile::read_aligned(&file, code_offset).map_err(read_err)?;
            prepare_read(args, read)
        }
        None => prepare_bytes(args, &whole(&mut file)?),
    }
}

/// An artifact read with its code on a page boundary.
fn prepare_read(args: &RunArgs, read: MappedFile) -> Result<(EngineProfile, Program), CmdError> {
    let path = args.file.as_path();
    let (profile, artifact) = decode(args, read.bytes())?;
    if matches!(profile.target, ArtifactTarget::Pulley32 | ArtifactTarget::Pulley64) {
        // Bytecode is never published, so it cannot run from `read`
        // (engine::file_code): wasmtime copies it.
        let engine = new_engine(&profile)?;
        let program = load::load_decoded(&engine, &profile, &artifact, path)?;
        return Ok((profile, program));
    }
    let file_code = FileCode::new();
    let engine = new_engine_with(&profile, Some(file_code.clone()))?;
    // `artifact` borrows `read`, which the load takes: keep where its code is.
    let code = read.range_of(artifact.code);
    let header = artifact.header;
    let program = load::load_read(&file_code, &engine, &profile, read, &header, code, path)?;
    Ok((profile, program))
}

/// A file that does not start like an artifact: `.wasm`/`.wat` to compile
/// here, or what `decode` says is wrong with it.
fn prepare_bytes(args: &RunArgs, bytes: &[u8]) -> Result<(EngineProfile, Program), CmdError> {
    if let InputKind::Wasm(_) | InputKind::Wat = InputKind::of(bytes) {
        return compile_here(args, bytes);
    }
    let (profile, artifact) = decode(args, bytes)?;
    let engine = new_engine(&profile)?;
    let program = load::load_decoded(&engine, &profile, &artifact, args.file.as_path())?;
    Ok((profile, program))
}

/// Decodes (verifies) an artifact and picks the engine profile it needs,
/// refusing a run that asks for what it was compiled without.
fn decode<'a>(args: &RunArgs, bytes: &'a [u8]) -> Result<(EngineProfile, ArtifactRef<'a>), CmdError> {
    let artifact = format::decode(bytes).map_err(|source| CmdError::Format {
        path: args.file.display().to_string(),
        source,
    })?;
    // Unknown settings or a foreign target: the default profile's
    // fingerprint goes into the mismatch error.
    let profile = artifact.header.fingerprint.standalone_profile().unwrap_or_default();
    check_instrumentation(args, &profile, &artifact.header.source_name)?;
    profile.check_address_space(arcella_core::sys::memory::address_space_limit())?;
    Ok((profile, artifact))
}

/// A fuel limit needs fuel metering, a timeout epoch checks: refuses an
/// artifact compiled without what the run asks for, naming the fix.
fn check_instrumentation(args: &RunArgs, profile: &EngineProfile, source: &str) -> Result<(), CmdError> {
    let path = args.file.display();
    if args.fuel.is_some() && !profile.consume_fuel {
        return Err(CmdError::Instrumentation(format!(
            "{path}: --fuel needs fuel metering, which this artifact was compiled without; \
             recompile it with: arcella compile {source} -o {path} --fuel (or run it without --fuel)"
        )));
    }
    if args.timeout.is_some() && !profile.epoch_interruption {
        return Err(CmdError::Instrumentation(format!(
            "{path}: --timeout needs epoch checks, which this artifact was compiled without (--no-epoch); \
             recompile it with: arcella compile {source} -o {path} (or run it without --timeout)"
        )));
    }
    Ok(())
}

/// Compiles a .wasm/.wat with only the instrumentation the run needs: fuel
/// metering for `--fuel`, epoch checks for `--timeout`.
#[cfg(feature = "compiler")]
fn compile_here(args: &RunArgs, bytes: &[u8]) -> Result<(EngineProfile, Program), CmdError> {
    let profile = EngineProfile::default()
        .with_fuel(args.fuel.is_some())
        .with_epoch(args.timeout.is_some());
    profile.check_address_space(arcella_core::sys::memory::address_space_limit())?;
    let engine = new_engine(&profile)?;
    let program = load::compile_in_memory(&engine, bytes, &super::file_label(&args.file))?;
    Ok((profile, program))
}

#[cfg(not(feature = "compiler"))]
fn compile_here(args: &RunArgs, _bytes: &[u8]) -> Result<(EngineProfile, Program), CmdError> {
    let path = &args.file;
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
