//! `arcella new NAME --lang LANG [--kind KIND]`: a ready project for a
//! guest (source, component.toml, deployment.toml, `./build.sh`, README
//! and `wit/`), written from templates in the binary (templates/ of the
//! source tree). The `examples/<lang>-service/` projects are what this
//! writes for `--kind service` (tested), and CI builds and runs each one
//! through a daemon.

use crate::cli::{GuestKind, GuestLang, NewArgs};
use crate::cmd::render::json_value;
use crate::exit::Failure;
use crate::output::outln;
use std::path::{Path, PathBuf};

/// Why a project was not written.
#[derive(Debug, thiserror::Error)]
pub enum NewError {
    #[error("project name {name:?} {reason}; it becomes the module id (e.g. `arcella new my-sensor --lang python`)")]
    Name { name: String, reason: String },
    #[error("{path} exists and is not an empty directory: choose another NAME or --dir, or empty it first")]
    NotEmpty { path: String },
    #[error("{path}: cannot write: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl From<NewError> for Failure {
    fn from(err: NewError) -> Self {
        let kind = match err {
            NewError::Name { .. } => "invalid_input",
            NewError::NotEmpty { .. } => "already_exists",
            NewError::Write { .. } => "io",
        };
        Failure::new(kind, err)
    }
}

/// One file of a template: its path in the project and its text, with
/// `{{placeholders}}` (see [`render`]).
type File = (&'static str, &'static str);

const COMMON: &[File] = &[
    ("component.toml", include_str!("../../templates/component.toml")),
    ("README.md", include_str!("../../templates/README.md")),
    (".gitignore", include_str!("../../templates/gitignore")),
];

/// The language's files for both kinds.
fn lang_files(lang: GuestLang) -> &'static [File] {
    match lang {
        GuestLang::Rust => &[
            ("Cargo.toml", include_str!("../../templates/rust/Cargo.toml")),
            ("build.sh", include_str!("../../templates/rust/build.sh")),
        ],
        GuestLang::C => &[("build.sh", include_str!("../../templates/c/build.sh"))],
        GuestLang::Python => &[("build.sh", include_str!("../../templates/python/build.sh"))],
        GuestLang::Js => &[("build.sh", include_str!("../../templates/js/build.sh"))],
    }
}

/// The source of one language and kind.
fn source(lang: GuestLang, kind: GuestKind) -> File {
    match (lang, kind) {
        (GuestLang::Rust, GuestKind::Service) => ("src/lib.rs", include_str!("../../templates/rust/service/lib.rs")),
        (GuestLang::Rust, GuestKind::Command) => ("src/lib.rs", include_str!("../../templates/rust/command/lib.rs")),
        (GuestLang::C, GuestKind::Service) => ("main.c", include_str!("../../templates/c/service/main.c")),
        (GuestLang::C, GuestKind::Command) => ("main.c", include_str!("../../templates/c/command/main.c")),
        (GuestLang::Python, GuestKind::Service) => ("app.py", include_str!("../../templates/python/service/app.py")),
        (GuestLang::Python, GuestKind::Command) => ("app.py", include_str!("../../templates/python/command/app.py")),
        (GuestLang::Js, GuestKind::Service) => ("app.js", include_str!("../../templates/js/service/app.js")),
        (GuestLang::Js, GuestKind::Command) => ("app.js", include_str!("../../templates/js/command/app.js")),
    }
}

fn deployment(kind: GuestKind) -> &'static str {
    match kind {
        GuestKind::Service => include_str!("../../templates/service.deployment.toml"),
        GuestKind::Command => include_str!("../../templates/command.deployment.toml"),
    }
}

/// The WASI preview-1 adapter a C project's `wasm-tools component new`
/// turns its core module into a component with: the one matching this
/// daemon's wasmtime (48), written into the project.
pub const C_ADAPTER: (&str, &[u8]) = (
    "wasi_snapshot_preview1.reactor.wasm",
    wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
);

/// What a language's build needs, for the README.
fn tools(lang: GuestLang) -> &'static str {
    match lang {
        GuestLang::Rust => "Rust with the wasm32-wasip2 target (`rustup target add wasm32-wasip2`)",
        GuestLang::C => {
            "clang, wasm-ld and wasi-libc (Debian: `apt-get install clang lld wasi-libc \
             libclang-rt-14-dev-wasm32`), `wit-bindgen` 0.63.0 (`cargo install wit-bindgen-cli@0.63.0`) \
             and `wasm-tools` (`cargo install wasm-tools`)"
        }
        GuestLang::Python => "componentize-py 0.25.1 (`pip install componentize-py==0.25.1`)",
        GuestLang::Js => {
            "componentize-js 0.23.0 (`npm install @bytecodealliance/componentize-js@0.23.0`, \
             then `node_modules/.bin` on PATH)"
        }
    }
}

/// The values of every `{{placeholder}}`.
fn values(name: &str, lang: GuestLang, kind: GuestKind) -> Vec<(&'static str, String)> {
    let (kind_word, description, run_note, install_note, grants) = match kind {
        GuestKind::Service => (
            "service",
            "Greets from config, counts its starts in key-value, logs both",
            "\n\nruns it until Ctrl-C, when it hears the shutdown call and stops.\n`arcella run` grants \
             no key-value store: the service says so and counts nothing.",
            "    arcella logs NAME\n    arcella config NAME set greeting=hi   # it logs the new greeting\n    \
             arcella kv NAME get starts\n",
            "a key-value bucket and its config",
        ),
        GuestKind::Command => (
            "command",
            "Prints a greeting and its arguments",
            "\n\nprints its greeting and exits; arguments go after `--`.",
            "    arcella start NAME\n    arcella logs NAME\n",
            "its memory",
        ),
    };
    let (lang_title, memory) = match lang {
        GuestLang::Rust => ("Rust", "8M"),
        GuestLang::C => ("C", "8M"),
        GuestLang::Python => ("Python", "64M"),
        GuestLang::Js => ("JavaScript", "64M"),
    };
    let lower = description[..1].to_lowercase() + &description[1..];
    vec![
        ("name", name.to_owned()),
        ("crate", name.replace('-', "_")),
        ("kind", kind_word.to_owned()),
        ("world", kind_word.to_owned()),
        ("lang", lang_title.to_owned()),
        ("memory", memory.to_owned()),
        ("description", description.to_owned()),
        ("description_lower", lower),
        ("tools", tools(lang).to_owned()),
        ("run_note", run_note.to_owned()),
        ("install_note", install_note.replace("NAME", name)),
        ("grants", grants.to_owned()),
    ]
}

/// `text` with each `{{key}}` replaced by its value.
fn render(text: &str, values: &[(&'static str, String)]) -> String {
    values.iter().fold(text.to_owned(), |text, (key, value)| {
        text.replace(&format!("{{{{{key}}}}}"), value)
    })
}

/// Every file of the project, as (path in it, bytes, executable).
pub fn project(name: &str, lang: GuestLang, kind: GuestKind) -> Vec<(String, Vec<u8>, bool)> {
    let values = values(name, lang, kind);
    let mut files: Vec<(String, Vec<u8>, bool)> = COMMON
        .iter()
        .chain(lang_files(lang))
        .copied()
        .chain([source(lang, kind), ("deployment.toml", deployment(kind))])
        .map(|(path, text)| {
            (
                path.to_owned(),
                render(text, &values).into_bytes(),
                path.ends_with(".sh"),
            )
        })
        .collect();
    if lang == GuestLang::C {
        files.push((C_ADAPTER.0.to_owned(), C_ADAPTER.1.to_vec(), false));
    }
    for (path, text) in super::wit::FILES {
        files.push((format!("wit/{path}"), text.as_bytes().to_vec(), false));
    }
    files
}

/// Checks a project name: a module id that also names a Cargo package
/// (so starting with a letter).
fn check_name(name: &str) -> Result<(), NewError> {
    let reason = match arcella_core::manifest::check_name(name) {
        Err(reason) => Some(reason),
        Ok(()) if !name.starts_with(|c: char| c.is_ascii_lowercase()) => {
            Some("starts with a digit; a project name starts with a letter a-z".to_owned())
        }
        Ok(()) => None,
    };
    match reason {
        Some(reason) => Err(NewError::Name {
            name: name.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

/// Refuses a directory that exists and is not empty (or is a file).
fn check_free(dir: &Path) -> Result<(), NewError> {
    let busy = match std::fs::read_dir(dir) {
        Ok(mut entries) => entries.next().is_some(),
        Err(e) => e.kind() != std::io::ErrorKind::NotFound,
    };
    if busy {
        return Err(NewError::NotEmpty {
            path: dir.display().to_string(),
        });
    }
    Ok(())
}

/// What `new --json` prints.
#[derive(Debug, serde::Serialize)]
struct Created {
    dir: String,
    name: String,
    lang: &'static str,
    kind: &'static str,
    files: Vec<String>,
}

pub fn execute(args: &NewArgs, json: bool) -> Result<(), NewError> {
    check_name(&args.name)?;
    let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from(&args.name));
    check_free(&dir)?;
    let files = project(&args.name, args.lang, args.kind);
    for (path, bytes, executable) in &files {
        let full = dir.join(path);
        super::docs::write(full.clone(), bytes)
            .map_err(|super::docs::DocsError::Write { path, source }| NewError::Write { path, source })?;
        if *executable {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&full, std::fs::Permissions::from_mode(0o755)).map_err(|source| {
                NewError::Write {
                    path: full.display().to_string(),
                    source,
                }
            })?;
        }
    }
    let (lang, kind) = (args.lang.as_str(), args.kind.as_str());
    if json {
        json_value(&Created {
            dir: dir.display().to_string(),
            name: args.name.clone(),
            lang,
            kind,
            files: files.into_iter().map(|(path, _, _)| path).collect(),
        });
    } else {
        outln!(
            "created {} ({lang} {kind}) in {}: cd {} && ./build.sh, then arcella run {}.wasm (README.md says more)",
            args.name,
            dir.display(),
            dir.display(),
            args.name
        );
    }
    Ok(())
}
