//! `arcella inspect FILE`: what an artifact says about itself, verified.

use super::{CmdError, read_input};
use crate::cli::InspectArgs;
use arcella_core::EngineFingerprint;
use arcella_core::EngineProfile;
use arcella_core::artifact::format;
use arcella_core::digest::hex;

pub fn execute(args: &InspectArgs) -> Result<(), CmdError> {
    let bytes = read_input(&args.target)?;
    let artifact = format::decode(&bytes).map_err(|source| CmdError::Format {
        path: args.target.display().to_string(),
        source,
    })?;
    let h = &artifact.header;
    let here = EngineFingerprint::of(
        &EngineProfile::default().with_target(arcella_core::ArtifactTarget::from_resolved(&h.fingerprint.target)),
    );
    println!("file:        {}", args.target.display());
    println!("kind:        {}", h.kind);
    println!("fingerprint: {}", h.fingerprint);
    println!(
        "loads here:  {}",
        if here == h.fingerprint && arcella_core::ArtifactTarget::from_resolved(&h.fingerprint.target).runs_here() {
            "yes"
        } else {
            "no"
        }
    );
    println!("code:        sha256:{} ({} bytes)", hex(&h.code_sha256), h.code_len);
    println!("source:      {} sha256:{}", h.source_name, hex(&h.source_sha256));
    Ok(())
}
