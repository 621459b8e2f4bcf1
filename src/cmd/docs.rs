//! `arcella completions SHELL` and the hidden `arcella __generate-docs
//! DIR`, which writes the man pages (clap_mangen) and completion scripts
//! (clap_complete) the Debian package ships: generated from the very
//! parser they describe, so they cannot drift from it.

use crate::cli::{Cli, Shell};
use crate::exit::Failure;
use clap::CommandFactory;
use std::path::{Path, PathBuf};

/// Why the docs were not written.
#[derive(Debug, thiserror::Error)]
pub enum DocsError {
    #[error("{path}: cannot write: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl From<DocsError> for Failure {
    fn from(err: DocsError) -> Self {
        Failure::new("io", err)
    }
}

/// The file a shell's completion script is installed as, and the script.
fn script(shell: Shell) -> (&'static str, Vec<u8>) {
    let mut command = Cli::command();
    let mut out = Vec::new();
    let name = match shell {
        Shell::Bash => {
            clap_complete::generate(clap_complete::Shell::Bash, &mut command, "arcella", &mut out);
            "arcella.bash"
        }
        Shell::Zsh => {
            clap_complete::generate(clap_complete::Shell::Zsh, &mut command, "arcella", &mut out);
            "_arcella"
        }
        Shell::Fish => {
            clap_complete::generate(clap_complete::Shell::Fish, &mut command, "arcella", &mut out);
            "arcella.fish"
        }
    };
    (name, out)
}

/// `arcella completions SHELL`: the script on stdout.
pub fn completions(shell: Shell) {
    crate::output::bytes(&script(shell).1);
}

/// Writes `bytes` to `path`, making its directory first.
pub(crate) fn write(path: PathBuf, bytes: &[u8]) -> Result<(), DocsError> {
    let write_err = |source| DocsError::Write {
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(write_err)?;
    }
    std::fs::write(&path, bytes).map_err(write_err)
}

/// `DIR/man/arcella.1`, `DIR/man/arcella-VERB.1` for every visible verb
/// (and `arcella-fleet-VERB.1`), and `DIR/completions/{arcella.bash,
/// _arcella, arcella.fish}`.
pub fn generate(dir: &Path) -> Result<(), DocsError> {
    let mut command = Cli::command();
    command.build();
    man_pages(&command, &dir.join("man"))?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let (name, text) = script(shell);
        write(dir.join("completions").join(name), &text)?;
    }
    Ok(())
}

/// One page for `command` and each of its visible subcommands, recursively.
fn man_pages(command: &clap::Command, dir: &Path) -> Result<(), DocsError> {
    let mut page = Vec::new();
    let man = clap_mangen::Man::new(command.clone());
    // Writing to a Vec cannot fail.
    let _ = man.render(&mut page);
    write(
        dir.join(format!("{}.1", man.get_filename().trim_end_matches(".1"))),
        &page,
    )?;
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        man_pages(sub, dir)?;
    }
    Ok(())
}
