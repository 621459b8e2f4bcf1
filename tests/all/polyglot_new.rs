//! `arcella new`: the projects it writes are the polyglot examples (which
//! CI builds and runs through a daemon, tests/all/polyglot.rs), command
//! projects build with their `./build.sh` and run with `arcella run`, and
//! bad names, busy directories and unknown languages or kinds are refused
//! with errors that say what to do.

use crate::support::{arcella, arcella_in};
use std::path::{Path, PathBuf};
use std::process::Command;

const LANGS: &[&str] = &["rust", "c", "python", "js"];

/// Every file under `dir`, relative, sorted (following no links).
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut all = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let meta = std::fs::symlink_metadata(&path).unwrap();
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                let entry = entry.unwrap().path();
                // What a build leaves behind (componentize-py's bytecode).
                if !entry.ends_with("__pycache__") {
                    stack.push(entry);
                }
            }
        } else {
            all.push(path.strip_prefix(dir).unwrap().to_path_buf());
        }
    }
    all.sort();
    all
}

#[test]
fn the_service_examples_are_what_arcella_new_writes() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp = tempfile::tempdir().unwrap();
    for lang in LANGS {
        let name = format!("{lang}-service");
        let dir = tmp.path().join(&name);
        arcella_in(Some(tmp.path()), ["new", &name, "--lang", lang])
            .expect_code(0)
            .stdout_has(&[&format!("created {name} ({lang} service)"), "./build.sh"]);
        let example = repo.join("examples").join(&name);
        let written = files(&dir);
        // The example's wit/ is a link to the repository's: compared below.
        let expected: Vec<PathBuf> = files(&example)
            .into_iter()
            .filter(|p| p != Path::new("wit") && p != Path::new("Cargo.lock"))
            .collect();
        let own: Vec<&PathBuf> = written
            .iter()
            .filter(|p| !p.starts_with("wit") && !p.ends_with("wasi_snapshot_preview1.reactor.wasm"))
            .collect();
        assert_eq!(own, expected.iter().collect::<Vec<_>>(), "{name}: files differ");
        for file in &expected {
            assert_eq!(
                std::fs::read_to_string(dir.join(file)).unwrap(),
                std::fs::read_to_string(example.join(file)).unwrap(),
                "examples/{name}/{} is not what `arcella new` writes: regenerate it",
                file.display()
            );
        }
        for wit in written.iter().filter(|p| p.starts_with("wit")) {
            let in_repo = repo.join(wit);
            assert_eq!(
                std::fs::read(dir.join(wit)).unwrap(),
                std::fs::read(&in_repo).unwrap(),
                "{}",
                wit.display()
            );
        }
        assert_eq!(std::fs::read_link(example.join("wit")).unwrap(), Path::new("../../wit"));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("build.sh")).unwrap().permissions().mode();
        assert_eq!(mode & 0o111, 0o111, "{name}/build.sh is executable");
        if *lang == "c" {
            let adapter = std::fs::read(dir.join("wasi_snapshot_preview1.reactor.wasm")).unwrap();
            assert!(adapter.starts_with(b"\0asm"), "the adapter is a wasm module");
        }
    }
}

#[test]
fn new_refuses_bad_names_busy_directories_and_unknown_languages_or_kinds() {
    let tmp = tempfile::tempdir().unwrap();
    let at = Some(tmp.path());
    let long = "a".repeat(64);
    for (name, says) in [
        ("my app", "contains ' '"),
        ("9lives", "starts with a digit"),
        ("_x", "starts with \"_\""),
        (long.as_str(), "64 characters long"),
    ] {
        arcella_in(at, ["new", name, "--lang", "rust"])
            .expect_code(1)
            .stderr_has(&[says, "module id"]);
    }
    assert!(files(tmp.path()).is_empty(), "nothing written");
    let busy = tmp.path().join("busy");
    std::fs::create_dir(&busy).unwrap();
    std::fs::write(busy.join("mine.txt"), "keep").unwrap();
    arcella_in(at, ["new", "busy", "--lang", "python"])
        .expect_code(1)
        .stderr_has(&["busy exists and is not an empty directory", "choose another NAME"]);
    assert_eq!(files(&busy), [PathBuf::from("mine.txt")], "nothing added");
    std::fs::write(tmp.path().join("plain"), "a file").unwrap();
    arcella_in(at, ["new", "x", "--lang", "c", "--dir", "plain"])
        .expect_code(1)
        .stderr_has(&["plain exists and is not an empty directory"]);
    // An empty directory is fine.
    std::fs::create_dir(tmp.path().join("empty")).unwrap();
    arcella_in(at, ["new", "empty", "--lang", "js", "--kind", "command"]).expect_code(0);
    assert!(tmp.path().join("empty/app.js").is_file());
    arcella(["new", "x", "--lang", "cobol"])
        .expect_code(2)
        .stderr_has(&["invalid value 'cobol'", "rust, c, python, js"]);
    arcella(["new", "x", "--lang", "rust", "--kind", "provider"])
        .expect_code(2)
        .stderr_has(&["invalid value 'provider'", "service, command"]);
    arcella(["new", "x"]).expect_code(2).stderr_has(&["--lang"]);
}

/// `./build.sh` of a project, with the guest tools on PATH and Rust
/// building into the test setup's target directory (its wit-bindgen is
/// compiled there already).
fn build(dir: &Path) {
    crate::polyglot::require_tools();
    let guests = Path::new(arcella_test_programs::GUESTS_DIR);
    let tools = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/guest-tools/bin");
    let tools = std::env::var_os("ARCELLA_GUEST_TOOLS").map_or(tools, |d| PathBuf::from(d).join("bin"));
    let path = format!("{}:{}", tools.display(), std::env::var("PATH").unwrap_or_default());
    let out = Command::new(dir.join("build.sh"))
        .env("PATH", path)
        .env("CARGO_TARGET_DIR", guests.join("../guests-target"))
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}/build.sh: {}{}",
        dir.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn command_projects_in_rust_and_c_build_and_run_with_arcella_run() {
    let tmp = tempfile::tempdir().unwrap();
    for lang in ["rust", "c"] {
        let name = format!("{lang}-hello");
        arcella_in(Some(tmp.path()), ["new", &name, "--lang", lang, "--kind", "command"]).expect_code(0);
        let dir = tmp.path().join(&name);
        build(&dir);
        let wasm = dir.join(format!("{name}.wasm"));
        arcella([
            "run".as_ref(),
            wasm.as_os_str(),
            "--".as_ref(),
            "one".as_ref(),
            "two".as_ref(),
        ])
        .expect_code(0)
        .stdout_has(&[&format!("hello from {lang}, args"), "one", "two"]);
    }
}
