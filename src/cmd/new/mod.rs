//! `arcella new NAME --lang rust|c|python|js [--kind …]`: a ready project
//! for a module, from a template built into the binary: its source,
//! `component.toml`, `deployment.toml`, a one-command build (`./build.sh`),
//! a README, and the WIT package set under `wit/` (the project's own world
//! in `wit/world.wit`, `arcella:platform` and WASI under `wit/deps/`).

mod templates;

use crate::cli::NewArgs;
use crate::cmd::render::json_value;
use crate::exit::Failure;
use crate::output::outln;
use std::path::{Path, PathBuf};
use templates::{NEXT, Values};

/// Why no project was made. Nothing is written before every check passed,
/// and an existing directory's files are never replaced.
#[derive(Debug, thiserror::Error)]
pub enum NewError {
    #[error(
        "`{0}` is not a usable project name: use lowercase words of a-z and 0-9 joined by '-', each \
         starting with a letter, at most 63 characters (it names the module, its WIT world and its package), \
         such as `room-sensor`"
    )]
    BadName(String),
    #[error("there is no `{kind}` template for {lang}; {lang} has: {available}")]
    NoTemplate {
        lang: &'static str,
        kind: &'static str,
        available: String,
    },
    #[error("{0} exists and is not empty; choose another name, or --dir for an empty or new directory")]
    NotEmpty(String),
    #[error("{path}: cannot write: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl From<NewError> for Failure {
    fn from(err: NewError) -> Self {
        match err {
            NewError::Write { .. } => Failure::new("io", err),
            _ => Failure::with_code(crate::exit::USAGE, "usage", err),
        }
    }
}

/// What `new --json` prints.
#[derive(Debug, serde::Serialize)]
struct Made {
    dir: String,
    lang: &'static str,
    kind: &'static str,
    world: String,
    files: Vec<String>,
    next: String,
}

/// Makes the project.
pub fn execute(args: &NewArgs, json: bool) -> Result<(), NewError> {
    check_name(&args.name)?;
    let files = templates::files_of(args.lang, args.kind);
    if files.is_empty() {
        return Err(NewError::NoTemplate {
            lang: templates::lang_dir(args.lang),
            kind: templates::kind_dir(args.kind),
            available: match templates::kinds_of(args.lang) {
                kinds if kinds.is_empty() => "no template in this build of arcella".to_owned(),
                kinds => kinds.join(", "),
            },
        });
    }
    let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from(&args.name));
    check_empty(&dir)?;
    let values = Values {
        name: args.name.clone(),
        world: templates::platform_world(args.kind),
    };
    let mut written = Vec::new();
    for (name, text) in wit_files() {
        write(&dir, &name, text.as_bytes(), false)?;
        written.push(name);
    }
    let mut next = String::new();
    for (path, file) in files {
        let text = values.render(file.text);
        if path == NEXT {
            next = text;
            continue;
        }
        write(&dir, path, text.as_bytes(), file.executable)?;
        written.push(path.to_string());
    }
    written.sort();
    let made = Made {
        dir: dir.display().to_string(),
        lang: templates::lang_dir(args.lang),
        kind: templates::kind_dir(args.kind),
        world: format!("arcella:platform/{}", values.world),
        files: written,
        next,
    };
    if json {
        json_value(&made);
    } else {
        outln!(
            "made {} ({} {}, world {}) in {}: {} files",
            args.name,
            made.lang,
            made.kind,
            made.world,
            made.dir,
            made.files.len()
        );
        outln!("next:\n{}", made.next.trim_end());
    }
    Ok(())
}

/// A project name: kebab-case words, as WIT wants for a world name.
fn check_name(name: &str) -> Result<(), NewError> {
    let word_ok = |word: &str| {
        word.starts_with(|c: char| c.is_ascii_lowercase())
            && word.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    };
    if name.len() <= arcella_core::manifest::MAX_NAME_LEN && name.split('-').all(word_ok) {
        Ok(())
    } else {
        Err(NewError::BadName(name.to_string()))
    }
}

fn check_empty(dir: &Path) -> Result<(), NewError> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => match entries.next() {
            Some(_) => Err(NewError::NotEmpty(dir.display().to_string())),
            None => Ok(()),
        },
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(NewError::Write {
            path: dir.display().to_string(),
            source,
        }),
    }
}

/// The WIT package set as a project lays it out: every package under
/// `wit/deps/` (`arcella:platform` in `wit/deps/platform/`), so that the
/// project's own package is the one in `wit/` (its `world.wit`).
fn wit_files() -> impl Iterator<Item = (String, &'static str)> {
    crate::cmd::wit::FILES.iter().filter_map(|(name, text)| {
        let path = match *name {
            "README.md" => return None,
            "platform.wit" => "wit/deps/platform/platform.wit".to_string(),
            other => format!("wit/{other}"),
        };
        Some((path, *text))
    })
}

fn write(dir: &Path, name: &str, bytes: &[u8], executable: bool) -> Result<(), NewError> {
    let path = dir.join(name);
    super::docs::write(path.clone(), bytes)
        .map_err(|super::docs::DocsError::Write { path, source }| NewError::Write { path, source })?;
    if executable {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).map_err(|source| NewError::Write {
            path: path.display().to_string(),
            source,
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_must_be_kebab_case_words_starting_with_letters() {
        for good in ["a", "room-sensor", "s3-upload", "x1"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Room",
            "room_sensor",
            "-a",
            "a-",
            "a--b",
            "1a",
            "a-1b",
            &"a".repeat(64),
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_wit_package_set_moves_under_deps() {
        let paths: Vec<String> = wit_files().map(|(path, _)| path).collect();
        assert!(paths.contains(&"wit/deps/platform/platform.wit".to_string()));
        assert!(paths.contains(&"wit/deps/cli.wit".to_string()));
        assert!(paths.iter().all(|path| path.starts_with("wit/deps/")), "{paths:?}");
    }
}
