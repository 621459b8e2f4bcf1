//! `arcella inspect FILE`: what an artifact says about itself, verified.

use super::{CmdError, read_input};
use crate::cli::InspectArgs;
use crate::output::outln;
use arcella_core::artifact::format;
use arcella_core::digest::hex;

/// What `inspect FILE --json` prints.
#[derive(Debug, serde::Serialize)]
struct ArtifactFile {
    file: String,
    /// module or component.
    kind: &'static str,
    fingerprint: String,
    loads_here: bool,
    /// What the artifact was compiled with (fuel metering, epoch checks,
    /// memory layout), when it loads here; else null.
    instrumentation: Option<String>,
    code_sha256: String,
    code_len: u64,
    source_name: String,
    source_sha256: String,
}

pub fn execute(args: &InspectArgs, json: bool) -> Result<(), CmdError> {
    let bytes = read_input(&args.target)?;
    let artifact = format::decode(&bytes).map_err(|source| CmdError::Format {
        path: args.target.display().to_string(),
        source,
    })?;
    let h = &artifact.header;
    // Loads here when this machine executes its target and an engine for
    // that target, with this build's settings (any fuel or epoch variant),
    // has its fingerprint.
    let profile = h.fingerprint.standalone_profile();
    let loads_here = profile.is_some();
    let instrumentation = profile.map(|p| p.instrumentation());
    if json {
        crate::cmd::render::json_value(&ArtifactFile {
            file: args.target.display().to_string(),
            kind: crate::cmd::json::artifact_kind(h.kind),
            fingerprint: h.fingerprint.to_string(),
            loads_here,
            instrumentation,
            code_sha256: hex(&h.code_sha256),
            code_len: h.code_len,
            source_name: h.source_name.clone(),
            source_sha256: hex(&h.source_sha256),
        });
        return Ok(());
    }
    outln!("file:        {}", args.target.display());
    outln!("kind:        {}", h.kind);
    outln!("fingerprint: {}", h.fingerprint);
    match &instrumentation {
        Some(what) => outln!("loads here:  yes ({what})"),
        None => outln!("loads here:  no"),
    }
    outln!("code:        sha256:{} ({} bytes)", hex(&h.code_sha256), h.code_len);
    outln!("source:      {} sha256:{}", h.source_name, hex(&h.source_sha256));
    Ok(())
}
