//! `arcella compile` and `arcella inspect` (builds with the compiler).

use crate::support::*;
use std::fs;
use std::path::Path;

fn compile(input: &Path, output: &Path, target: &str) -> Ran {
    arcella([
        "compile".as_ref(),
        input.as_os_str(),
        "-o".as_ref(),
        output.as_os_str(),
        "--target".as_ref(),
        target.as_ref(),
    ])
}

fn inspect(path: &Path) -> Ran {
    arcella(["inspect".as_ref(), path.as_os_str()])
}

#[test]
fn modules_and_components_are_detected_not_flagged() {
    let dir = tempfile::tempdir().unwrap();
    for (guest, kind) in [("hello_p1", "core module"), ("hello_p2", "component")] {
        let out = dir.path().join(format!("{guest}.cwasm"));
        compile(&wasm(guest), &out, "native").expect_code(0).stderr_has(&[kind]);
        inspect(&out)
            .expect_code(0)
            .stdout_has(&[&format!("kind:        {kind}"), "loads here:  yes"]);
        arcella(["run".as_ref(), out.as_os_str()])
            .expect_code(0)
            .stdout_has(&["hello from arcella"]);
    }
}

/// `arcella run` reads an artifact once and runs native code where it was
/// read (its code placed on a page boundary); pulley bytecode, and an
/// artifact that comes down a pipe, take the copying path. All must run.
#[test]
fn artifacts_run_from_a_file_and_from_a_pipe() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    for (guest, target) in [
        ("hello_p1", "native"),
        ("hello_p2", "native"),
        ("hello_p1", "pulley64"),
        ("hello_p2", "pulley64"),
    ] {
        let out = dir.path().join(format!("{guest}.{target}.cwasm"));
        compile(&wasm(guest), &out, target).expect_code(0);
        arcella(["run".as_ref(), out.as_os_str()])
            .expect_code(0)
            .stdout_has(&["hello from arcella"]);
        let mut piped = Command::new(env!("CARGO_BIN_EXE_arcella"))
            .args(["run", "/dev/stdin"])
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        piped.stdin.take().unwrap().write_all(&fs::read(&out).unwrap()).unwrap();
        let piped = piped.wait_with_output().unwrap();
        assert_eq!(piped.status.code(), Some(0), "{guest} {target} from a pipe");
        assert!(String::from_utf8_lossy(&piped.stdout).contains("hello from arcella"));
    }
}

#[test]
fn each_target_compiles_and_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let host = arcella_core::engine::HOST_TRIPLE;
    for (target, shown, loads) in [
        ("native", host, "yes"),
        ("pulley64", "pulley64", "yes"),
        ("pulley32", "pulley32", "no"),
        ("aarch64-unknown-linux-gnu", "aarch64-unknown-linux-gnu", "no"),
    ] {
        let out = dir.path().join(format!("hello.{target}.cwasm"));
        compile(&wasm("hello_p1"), &out, target).expect_code(0);
        inspect(&out).expect_code(0).stdout_has(&[
            &format!("fingerprint: wasmtime-48.0.8/{shown}/"),
            &format!("loads here:  {loads}"),
        ]);
    }
}

#[test]
fn the_output_defaults_beside_the_input() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("guest.wasm");
    fs::copy(wasm("hello_p1"), &input).unwrap();
    arcella(["compile".as_ref(), input.as_os_str()]).expect_code(0);
    assert!(dir.path().join("guest.cwasm").is_file());
}

#[test]
fn wat_compiles_too() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("tiny.wat");
    fs::write(&input, "(module (func (export \"_start\")))").unwrap();
    let out = dir.path().join("tiny.cwasm");
    compile(&input, &out, "native").expect_code(0);
    arcella(["run".as_ref(), out.as_os_str()]).expect_code(0);
    arcella(["run".as_ref(), input.as_os_str()]).expect_code(0);
}

#[test]
fn plain_wasm_runs_directly_on_a_build_host() {
    for guest in ["hello_p1", "hello_p2"] {
        arcella(["run".as_ref(), wasm(guest).as_os_str(), "--".as_ref(), "x".as_ref()])
            .expect_code(0)
            .stdout_has(&["arg: x"]);
    }
}

#[test]
fn compile_refuses_what_it_cannot_compile() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.cwasm");
    let art = artifact("hello_p1", "native");
    compile(&art, &out, "native")
        .expect_code(code::FAILURE)
        .stderr_has(&["already compiled"]);

    let noise = dir.path().join("noise.wasm");
    fs::write(&noise, [0x13u8; 100]).unwrap();
    compile(&noise, &out, "native")
        .expect_code(code::FAILURE)
        .stderr_has(&["noise.wasm", "cannot compile"]);

    let truncated = dir.path().join("half.wasm");
    let bytes = fs::read(wasm("hello_p1")).unwrap();
    fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    compile(&truncated, &out, "native")
        .expect_code(code::FAILURE)
        .stderr_has(&["half.wasm", "not a valid WebAssembly core module"]);

    let bad_wat = dir.path().join("bad.wat");
    fs::write(&bad_wat, "(module (func (export \"f\") (i32.bogus)))").unwrap();
    compile(&bad_wat, &out, "native")
        .expect_code(code::FAILURE)
        .stderr_has(&["bad.wat", "invalid WebAssembly text"]);

    compile(Path::new("/no/such.wasm"), &out, "native")
        .expect_code(code::FAILURE)
        .stderr_has(&["/no/such.wasm"]);
    assert!(!out.exists(), "a failed compile left an output file");
}

#[test]
fn an_unknown_target_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    compile(&wasm("hello_p1"), &dir.path().join("x.cwasm"), "z80")
        .expect_code(2)
        .stderr_has(&["unknown artifact target `z80`"]);
}
