//! `arcella compile IN -o OUT [--target T | --board B [--boards-dir D]] [--fuel] [--no-epoch]`

use super::{CmdError, read_input};
use crate::cli::CompileArgs;
use arcella_core::EngineProfile;
use arcella_core::artifact::compile::compile;
use arcella_core::board::BoardSearch;
use arcella_core::daemon::paths::Defaults;
use arcella_core::sys::fs::write_atomic;
use std::path::Path;

/// The engine to compile with: the board's compile profile, or the
/// default profile with `--target`; fuel metering only with `--fuel`.
fn profile(args: &CompileArgs) -> Result<EngineProfile, CmdError> {
    let base = base_profile(args)?.with_fuel(args.fuel);
    Ok(if args.no_epoch { base.with_epoch(false) } else { base })
}

fn base_profile(args: &CompileArgs) -> Result<EngineProfile, CmdError> {
    let Some(board) = &args.board else {
        return Ok(EngineProfile::default().with_target(args.target.clone()));
    };
    let config = Defaults::for_this_user().config;
    let config_dir = config.parent().unwrap_or(Path::new("/"));
    let board = BoardSearch::for_build_host(args.boards_dir.as_deref(), config_dir).load(board, Path::new("."))?;
    eprintln!(
        "board {}: {} artifacts for {}",
        board.name, board.artifact, board.triple
    );
    Ok(board.compile_profile())
}

/// What `compile --json` prints.
#[derive(Debug, serde::Serialize)]
struct Compiled {
    input: String,
    output: String,
    /// module or component.
    kind: &'static str,
    fingerprint: String,
}

pub fn execute(args: &CompileArgs, json: bool) -> Result<(), CmdError> {
    let source = read_input(&args.input)?;
    let name = super::file_label(&args.input);
    let profile = profile(args)?;
    // wasmtime says nothing while it compiles: the line only counts seconds.
    let progress = crate::progress::Elapsed::start(
        format!("compiling {name} ({})", crate::progress::size(source.len() as u64)),
        json,
    );
    let compiled = compile(&profile, &source, &name)?;
    progress.finish(&format!("compiled {name}"));
    let (from_providers, from_host): (Vec<String>, Vec<String>) = compiled
        .imports
        .iter()
        .cloned()
        .partition(|i| arcella_core::host::typed::from_provider(i));
    for missing in arcella_core::host::provided::missing_imports(&from_host) {
        eprintln!("warning: a device running this Arcella will refuse to install it: {missing}");
    }
    for import in &from_providers {
        eprintln!(
            "note: imports `{import}`, which another module must provide: grant it in deployment.toml [imports] \
             (docs/typed-calls.md)"
        );
    }
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| args.input.with_extension("cwasm"));
    let write_err = |source| CmdError::Write {
        path: output.display().to_string(),
        source,
    };
    let dir = match output.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let file_name = output
        .file_name()
        .ok_or_else(|| write_err(std::io::Error::other("the output path names no file")))?
        .to_string_lossy()
        .into_owned();
    write_atomic(dir, &file_name, &compiled.encode()).map_err(write_err)?;
    if json {
        super::render::json_value(&Compiled {
            input: args.input.display().to_string(),
            output: output.display().to_string(),
            kind: super::json::artifact_kind(compiled.header.kind),
            fingerprint: compiled.header.fingerprint.to_string(),
        });
        return Ok(());
    }
    eprintln!(
        "compiled {} ({}) for {} ({}) -> {}",
        args.input.display(),
        compiled.header.kind,
        compiled.header.fingerprint,
        profile.instrumentation(),
        output.display()
    );
    Ok(())
}
