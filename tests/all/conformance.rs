//! The WASI preview-1 conformance suite (shared/wasi-testsuite), every test
//! through `arcella run`, as a native and as a pulley64 artifact.

use crate::support::*;
use arcella_test_programs::{WASI_TESTS, WASI_TESTSUITE, WASI_TESTSUITE_ARTIFACTS};
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

/// A test's spec, with the README's defaults for missing keys.
struct Spec {
    args: Vec<String>,
    env: Vec<(String, String)>,
    root: Option<String>,
    exit_code: i32,
    stdout: Option<String>,
    stderr: Option<String>,
}

fn spec(suite: &Path, name: &str) -> Spec {
    let path = suite.join(format!("{name}.json"));
    let json: serde_json::Value = match fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
        Err(_) => serde_json::Value::Object(Default::default()),
    };
    let strings = |key: &str| -> Vec<String> {
        json[key]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    };
    Spec {
        args: strings("args"),
        env: json["env"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                    .collect()
            })
            .unwrap_or_default(),
        root: json["root"].as_str().map(str::to_owned),
        exit_code: json["exit_code"].as_i64().map_or(0, |c| c as i32),
        stdout: json["stdout"].as_str().map(str::to_owned),
        stderr: json["stderr"].as_str().map(str::to_owned),
    }
}

/// Copies a directory tree, keeping symlinks as symlinks and making the
/// copies writable (the suite's files are read-only).
fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type().unwrap();
        if kind.is_symlink() {
            symlink(fs::read_link(&src).unwrap(), &dst).unwrap();
        } else if kind.is_dir() {
            copy_tree(&src, &dst);
        } else {
            fs::write(&dst, fs::read(&src).unwrap()).unwrap();
        }
    }
}

fn run_suite(target: &str) {
    let suite = PathBuf::from(WASI_TESTSUITE.unwrap_or_else(|| {
        panic!("wasi-testsuite not found beside the repository (../shared/wasi-testsuite); set ARCELLA_WASI_TESTSUITE")
    }));
    assert_eq!(WASI_TESTS.len(), 46, "the suite has 46 tests; found {:?}", WASI_TESTS);
    let mut failures = Vec::new();
    for name in WASI_TESTS {
        let spec = spec(&suite, name);
        let scratch = tempfile::tempdir().unwrap();
        let mut args: Vec<String> = vec!["run".into()];
        args.push(
            Path::new(WASI_TESTSUITE_ARTIFACTS)
                .join(format!("{name}.{target}.cwasm"))
                .display()
                .to_string(),
        );
        if let Some(root) = &spec.root {
            let copy = scratch.path().join(root);
            copy_tree(&suite.join(root), &copy);
            args.push("--dir".into());
            args.push(format!("{}::/", copy.display()));
        }
        for (key, value) in &spec.env {
            args.push("--env".into());
            args.push(format!("{key}={value}"));
        }
        args.push("--".into());
        args.extend(spec.args.iter().cloned());
        let ran = arcella(&args);
        let output_ok = spec.stdout.as_ref().is_none_or(|s| *s == ran.stdout)
            && spec.stderr.as_ref().is_none_or(|s| *s == ran.stderr);
        if ran.code != Some(spec.exit_code) || !output_ok {
            failures.push(format!(
                "{name} ({target}): exit {:?}, expected {}\n  stdout: {}\n  stderr: {}",
                ran.code,
                spec.exit_code,
                ran.stdout.trim(),
                ran.stderr.trim()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} conformance tests failed:\n{}",
        failures.len(),
        WASI_TESTS.len(),
        failures.join("\n")
    );
}

#[test]
fn wasi_testsuite_passes_as_native_artifacts() {
    run_suite("native");
}

#[test]
fn wasi_testsuite_passes_as_pulley64_artifacts() {
    run_suite("pulley64");
}
