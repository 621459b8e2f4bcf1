//! `arcella compile IN -o OUT [--target T]`

use super::{CmdError, read_input};
use crate::cli::CompileArgs;
use arcella_core::EngineProfile;
use arcella_core::artifact::compile::compile;
use arcella_core::sys::fs::write_atomic;
use std::path::Path;

pub fn execute(args: &CompileArgs) -> Result<(), CmdError> {
    let source = read_input(&args.input)?;
    let name = args.input.file_name().map_or_else(
        || args.input.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let profile = EngineProfile::default().with_target(args.target.clone());
    let compiled = compile(&profile, &source, &name)?;
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
    eprintln!(
        "compiled {} ({}) for {} -> {}",
        args.input.display(),
        compiled.header.kind,
        compiled.header.fingerprint,
        output.display()
    );
    Ok(())
}
