//! An installed module whose artifact no longer fits the daemon's engine
//! (Arcella was upgraded, or the board or `[engine]` settings changed):
//! nothing of it runs, and the error names the commands that give it an
//! artifact for this engine, not the store's files.

use super::Supervisor;
use crate::artifact::ArtifactHeader;
use crate::daemon::registry::VersionRecord;
use crate::protocol::{ErrorKind, RemoteError};

impl Supervisor {
    /// `Err` when the stored artifact of `version` was compiled for
    /// another engine than this daemon's.
    pub(super) fn check_engine_unchanged(&self, id: &str, version: &VersionRecord) -> Result<(), RemoteError> {
        let Ok(header) = self.inner.store.header(&version.artifact) else {
            return Ok(()); // loading says what is wrong with it
        };
        if self.inner.engines.variant_of(&header.fingerprint).is_some() {
            return Ok(());
        }
        let fuel = crate::manifest::parse_deployment(&version.deployment_toml, "deployment.toml")
            .is_ok_and(|d| d.limits.fuel.is_some());
        Err(RemoteError::new(
            ErrorKind::InvalidArtifact,
            self.engine_changed(id, &header, fuel),
        ))
    }

    fn engine_changed(&self, id: &str, header: &ArtifactHeader, fuel: bool) -> String {
        let config = &self.inner.config;
        let [engine, _] = self.inner.engines.fingerprints();
        let source = crate::artifact::load::shell_word(&header.source_name);
        let output = crate::artifact::load::shell_word(&format!("{id}.cwasm"));
        let id_word = crate::artifact::load::shell_word(id);
        let fuel = if fuel { " --fuel" } else { "" };
        let engine_args = if config.own_engine_settings {
            "--board FILE   (FILE: a board file holding this device's board settings and the [engine] \
             table of its arcella.toml, which no --target reproduces)"
                .to_owned()
        } else if config.board == crate::board::GENERIC {
            format!("--target {}", config.engine.target.resolved())
        } else {
            format!("--board {}", crate::artifact::load::shell_word(&config.board))
        };
        let here = if cfg!(feature = "compiler") {
            format!(
                "\n  arcella update {id_word} {source}   (this arcella compiles the source for its own engine)\nor, on a build host:"
            )
        } else {
            String::new()
        };
        format!(
            "its artifact was compiled for engine {}, but this daemon's engine is now {engine}: Arcella was \
             upgraded, or the board or [engine] settings changed since it was installed. Nothing of it runs \
             until it has an artifact for this engine:{here}\n  arcella compile {source} -o {output}{fuel} \
             {engine_args}\n  arcella update {id_word} {output}",
            header.fingerprint
        )
    }
}
