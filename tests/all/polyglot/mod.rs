//! Guests in every language, from an empty directory to a module running
//! in a daemon: `arcella new` for each template, and the examples under
//! `examples/<lang>-…/`, built from source with the pinned toolchains
//! `scripts/guest-tools` installs (componentize-py, componentize-js, jco,
//! clang with wasi-libc, wit-bindgen, Rust), as a user would build them.
//!
//! Host build only: the projects are compiled on install (the device build
//! has no compiler).

mod python_js;
mod rust_c;
mod wit_set;

use crate::support::Ran;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The repository's root.
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `PATH` with the pinned guest toolchains first (installed by
/// `scripts/guest-tools` on first use; it does nothing when they are), and
/// the `arcella` under test, which build scripts may call.
pub fn tool_path() -> &'static str {
    static PATH: OnceLock<String> = OnceLock::new();
    PATH.get_or_init(|| {
        let out = Command::new(repo().join("scripts/guest-tools"))
            .stderr(Stdio::inherit())
            .output()
            .expect("scripts/guest-tools runs");
        assert!(out.status.success(), "scripts/guest-tools failed");
        let tools = String::from_utf8(out.stdout).unwrap().trim().to_string();
        let arcella_dir = Path::new(env!("CARGO_BIN_EXE_arcella"))
            .parent()
            .unwrap()
            .display()
            .to_string();
        format!("{tools}:{arcella_dir}:{}", std::env::var("PATH").unwrap_or_default())
    })
}

/// Runs `program ARGS...` in `dir` with [`tool_path`] (and the rest of the
/// test's environment: HOME, CARGO_HOME, RUSTUP_HOME for Rust builds).
pub fn run_in(dir: &Path, program: &str, args: &[&str]) -> Ran {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("PATH", tool_path())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|err| panic!("{program} in {}: {err}", dir.display()));
    Ran {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `arcella new NAME --lang LANG --kind KIND` in a fresh directory under
/// `parent`, checked to succeed; the project's directory.
pub fn new_project(parent: &Path, name: &str, lang: &str, kind: &str) -> PathBuf {
    crate::support::arcella_in(Some(parent), ["new", name, "--lang", lang, "--kind", kind])
        .expect_code(0)
        .stdout_has(&[&format!("made {name}")]);
    parent.join(name)
}

/// Builds a project with its one command (`./build.sh`), checked to
/// succeed; the component it made (`NAME.wasm` in the project).
pub fn build(project: &Path) -> PathBuf {
    run_in(project, "./build.sh", &[]).expect_code(0);
    let name = project.file_name().unwrap().to_str().unwrap();
    let wasm = project.join(format!("{name}.wasm"));
    assert!(wasm.is_file(), "./build.sh made no {}", wasm.display());
    wasm
}

/// Copies a project's own files from `from` to `to`: not what its build
/// made (`*.wasm`, `*.cwasm`, `build/`). A symbolic link (c-meter's
/// `wit/deps`) is followed and copied as files.
pub fn copy_project(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap();
        let target = to.join(name);
        if path.is_dir() {
            if name != "build" {
                copy_project(&path, &target);
            }
        } else if !name.ends_with(".wasm") && !name.ends_with(".cwasm") {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}
