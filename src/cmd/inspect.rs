//! `arcella inspect FILE`: what an artifact says about itself, verified.

use super::{CmdError, read_input};
use crate::cli::InspectArgs;
use crate::output::outln;
use arcella_core::artifact::format;
use arcella_core::digest::hex;
use arcella_core::{ArtifactTarget, EngineFingerprint, EngineProfile};

/// What `inspect FILE --json` prints.
#[derive(Debug, serde::Serialize)]
struct ArtifactFile {
    file: String,
    /// module or component.
    kind: &'static str,
    fingerprint: String,
    loads_here: bool,
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
    // that target, with this build's settings, has its fingerprint.
    let target = ArtifactTarget::from_resolved(&h.fingerprint.target);
    let loads_here =
        target.runs_here() && EngineFingerprint::of(&EngineProfile::default().with_target(target)) == h.fingerprint;
    if json {
        crate::cmd::render::json_value(&ArtifactFile {
            file: args.target.display().to_string(),
            kind: crate::cmd::json::artifact_kind(h.kind),
            fingerprint: h.fingerprint.to_string(),
            loads_here,
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
    outln!("loads here:  {}", if loads_here { "yes" } else { "no" });
    outln!("code:        sha256:{} ({} bytes)", hex(&h.code_sha256), h.code_len);
    outln!("source:      {} sha256:{}", h.source_name, hex(&h.source_sha256));
    Ok(())
}
