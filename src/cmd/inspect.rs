//! `arcella inspect FILE`: what an artifact says about itself, verified.

use super::{CmdError, read_input};
use crate::cli::InspectArgs;
use arcella_core::artifact::format;
use arcella_core::digest::hex;

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
        let value = serde_json::json!({
            "file": args.target.display().to_string(),
            "kind": h.kind.to_string(),
            "fingerprint": h.fingerprint.to_string(),
            "loads_here": loads_here,
            "instrumentation": instrumentation,
            "code_sha256": hex(&h.code_sha256),
            "code_len": h.code_len,
            "source_name": h.source_name,
            "source_sha256": hex(&h.source_sha256),
        });
        crate::cmd::render::json_value(&value);
        return Ok(());
    }
    println!("file:        {}", args.target.display());
    println!("kind:        {}", h.kind);
    println!("fingerprint: {}", h.fingerprint);
    match &instrumentation {
        Some(what) => println!("loads here:  yes ({what})"),
        None => println!("loads here:  no"),
    }
    println!("code:        sha256:{} ({} bytes)", hex(&h.code_sha256), h.code_len);
    println!("source:      {} sha256:{}", h.source_name, hex(&h.source_sha256));
    Ok(())
}
