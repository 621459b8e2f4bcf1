//! Bad input: a clear message naming the file, a non-zero exit, no panic.

use crate::support::*;
use arcella_core::artifact::format;
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, bytes).unwrap();
    path
}

fn run_file(path: &Path) -> Ran {
    arcella([Path::new("run"), path])
}

#[test]
fn a_missing_file_is_named() {
    run_file(Path::new("/no/such/file.cwasm"))
        .expect_code(code::CANNOT_RUN)
        .stderr_has(&["/no/such/file.cwasm", "No such file"])
        .no_panic();
}

#[test]
fn a_directory_is_not_a_module() {
    let dir = tempfile::tempdir().unwrap();
    run_file(dir.path()).expect_code(code::CANNOT_RUN).no_panic();
}

#[test]
fn an_empty_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "empty.cwasm", b"");
    run_file(&path)
        .expect_code(code::CANNOT_RUN)
        .stderr_has(&["empty.cwasm", "empty"])
        .no_panic();
}

#[test]
fn random_bytes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let noise: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let path = write(dir.path(), "noise.bin", &noise);
    run_file(&path)
        .expect_code(code::CANNOT_RUN)
        .stderr_has(&["noise.bin", "neither WebAssembly nor an Arcella artifact"])
        .no_panic();
}

#[test]
fn a_truncated_wasm_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = fs::read(wasm("hello_p1")).unwrap();
    let path = write(dir.path(), "truncated.wasm", &wasm[..wasm.len() / 2]);
    let ran = run_file(&path);
    ran.expect_code(code::CANNOT_RUN)
        .stderr_has(&["truncated.wasm"])
        .no_panic();
    if cfg!(feature = "compiler") {
        ran.stderr_has(&["not a valid WebAssembly core module"]);
    } else {
        ran.stderr_has(&["no compiler", "arcella compile"]);
    }
}

#[test]
fn a_truncated_artifact_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cwasm = fs::read(artifact("hello_p1", "native")).unwrap();
    for keep in [10, 100, cwasm.len() / 2, cwasm.len() - 1] {
        let path = write(dir.path(), "truncated.cwasm", &cwasm[..keep]);
        run_file(&path)
            .expect_code(code::CANNOT_RUN)
            .stderr_has(&["truncated.cwasm", "truncated"])
            .no_panic();
    }
}

/// `arcella run` places the code where the header length says it starts
/// before anything is checked: a length that lies must still end in the
/// decoder's error, never in a read past the file or a misplaced load.
#[test]
fn a_header_length_that_lies_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cwasm = fs::read(artifact("hello_p1", "native")).unwrap();
    let with_length = |length: u32| {
        let mut bad = cwasm.clone();
        bad[10..14].copy_from_slice(&length.to_le_bytes());
        bad
    };
    // Past the 16 KiB limit: refused by name.
    let path = write(dir.path(), "huge.cwasm", &with_length(u32::MAX));
    run_file(&path)
        .expect_code(code::CANNOT_RUN)
        .stderr_has(&["huge.cwasm", "exceeds the 16384-byte limit"])
        .no_panic();
    // Inside the limit but past a short file's end: truncated, by how much.
    let mut short = with_length(100);
    short.truncate(34);
    let path = write(dir.path(), "short.cwasm", &short);
    run_file(&path)
        .expect_code(code::CANNOT_RUN)
        .stderr_has(&["short.cwasm", "the artifact needs 146 bytes, the file has 34"])
        .no_panic();
    // Inside the file but not where the header ends: the header no longer
    // parses, or the trailer no longer matches.
    for length in [1, 64, 4096] {
        let path = write(dir.path(), "moved.cwasm", &with_length(length));
        let ran = run_file(&path);
        ran.expect_code(code::CANNOT_RUN)
            .stderr_has(&["moved.cwasm"])
            .no_panic();
        assert!(
            ["malformed", "digest does not match", "truncated", "unexpected bytes"]
                .iter()
                .any(|why| ran.stderr.contains(why)),
            "header length {length}: {}",
            ran.stderr
        );
    }
}

#[test]
fn a_flipped_byte_anywhere_is_caught_before_loading() {
    let dir = tempfile::tempdir().unwrap();
    let cwasm = fs::read(artifact("hello_p1", "native")).unwrap();
    let len = cwasm.len();
    // In the header, the middle of the code, the code's last byte, the trailer.
    for at in [20, len / 2, len - 33, len - 1] {
        let mut bad = cwasm.clone();
        bad[at] ^= 0x40;
        let path = write(dir.path(), "flipped.cwasm", &bad);
        let ran = run_file(&path);
        ran.expect_code(code::CANNOT_RUN)
            .stderr_has(&["flipped.cwasm"])
            .no_panic();
        assert!(
            ran.stderr.contains("digest does not match")
                || ran.stderr.contains("does not match the code")
                || ran.stderr.contains("header is malformed"),
            "flip at {at}: {}",
            ran.stderr
        );
    }
}

#[test]
fn a_header_whose_code_digest_lies_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let cwasm = fs::read(artifact("hello_p1", "native")).unwrap();
    let decoded = format::decode(&cwasm).unwrap();
    let mut header = decoded.header.clone();
    header.code_sha256[5] ^= 1;
    let path = write(dir.path(), "lying.cwasm", &format::encode(&header, decoded.code));
    run_file(&path)
        .expect_code(code::CANNOT_RUN)
        .stderr_has(&["lying.cwasm", "code digest recorded in the header"])
        .no_panic();
}

#[test]
fn a_component_posing_as_a_module_and_the_reverse_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for (real, claimed, says) in [
        (
            "hello_p2",
            arcella_core::artifact::ArtifactKind::Module,
            "is a component, but its header says core module",
        ),
        (
            "hello_p1",
            arcella_core::artifact::ArtifactKind::Component,
            "is a core module, but its header says component",
        ),
    ] {
        let cwasm = fs::read(artifact(real, "native")).unwrap();
        let decoded = format::decode(&cwasm).unwrap();
        let mut header = decoded.header.clone();
        header.kind = claimed;
        let path = write(dir.path(), "posing.cwasm", &format::encode(&header, decoded.code));
        run_file(&path)
            .expect_code(code::CANNOT_RUN)
            .stderr_has(&["posing.cwasm", says])
            .no_panic();
    }
}

#[test]
fn an_artifact_for_another_target_names_both_fingerprints_and_the_fix() {
    let path = arcella_test_programs::artifact("hello_p1", "aarch64-unknown-linux-gnu");
    let host = arcella_core::engine::HOST_TRIPLE;
    run_file(&path)
        .expect_code(code::CANNOT_RUN)
        .stderr_has(&[
            "compiled for engine wasmtime-48.0.8/aarch64-unknown-linux-gnu/",
            &format!("this engine is wasmtime-48.0.8/{host}/"),
            &format!("arcella compile hello_p1.wasm -o {} --target {host}", path.display()),
        ])
        .no_panic();
}

#[test]
fn an_artifact_for_other_engine_settings_names_the_fix() {
    let path = arcella_test_programs::artifact("hello_p1", "smallres");
    let ran = run_file(&path);
    ran.expect_code(code::CANNOT_RUN)
        .stderr_has(&[
            "compiled for engine wasmtime-48.0.8/",
            "this engine is",
            "arcella compile hello_p1.wasm",
        ])
        .no_panic();
}

#[test]
fn a_bare_wasmtime_artifact_is_refused_with_advice() {
    let dir = tempfile::tempdir().unwrap();
    let cwasm = fs::read(artifact("hello_p1", "native")).unwrap();
    let code = format::decode(&cwasm).unwrap().code.to_vec();
    let path = write(dir.path(), "bare.cwasm", &code);
    run_file(&path)
        .expect_code(code::CANNOT_RUN)
        .stderr_has(&["bare.cwasm", "without Arcella's header", "arcella compile"])
        .no_panic();
}

#[test]
fn an_artifact_from_a_future_format_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut cwasm = fs::read(artifact("hello_p1", "native")).unwrap();
    cwasm[8] = 99;
    let path = write(dir.path(), "future.cwasm", &cwasm);
    run_file(&path)
        .expect_code(code::CANNOT_RUN)
        .stderr_has(&["future.cwasm", "format version 99"])
        .no_panic();
}

#[test]
fn inspect_refuses_a_damaged_artifact() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = fs::read(artifact("hello_p2", "pulley64")).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    let path = dir.path().join("damaged.cwasm");
    fs::write(&path, bytes).unwrap();
    arcella([Path::new("inspect"), &path])
        .expect_code(code::FAILURE)
        .stderr_has(&["damaged.cwasm", "does not match", "changed or damaged"]);
}

#[cfg(not(feature = "compiler"))]
#[test]
fn a_device_build_has_no_compile_verb_and_says_how_to_get_an_artifact() {
    arcella(["compile", "x.wasm"]).expect_code(2).stderr_has(&["compile"]);
    run_file(&wasm("hello_p1")).expect_code(code::CANNOT_RUN).stderr_has(&[
        "hello_p1.wasm",
        "no compiler",
        "arcella compile",
    ]);
}

#[test]
fn a_fuel_limit_on_an_artifact_without_fuel_metering_names_the_fix() {
    for target in TARGETS {
        run_guest("cpu_loop_p1", target, &["--fuel", "1000"])
            .expect_code(code::CANNOT_RUN)
            .stderr_has(&[
                "--fuel needs fuel metering",
                "arcella compile cpu_loop_p1.wasm -o",
                "--fuel",
            ])
            .no_panic();
    }
}

#[test]
fn a_fuel_metered_artifact_runs_without_a_fuel_limit() {
    for target in TARGETS {
        run_guest("hello_p1", &format!("{target}-fuel"), &["--", "exit=4"])
            .expect_code(4)
            .stdout_has(&["hello from arcella"]);
    }
}

#[test]
fn a_timeout_on_an_artifact_without_epoch_checks_names_the_fix() {
    run_guest("hello_p1", "noepoch", &["--timeout", "5s"])
        .expect_code(code::CANNOT_RUN)
        .stderr_has(&["--timeout needs epoch checks", "arcella compile hello_p1.wasm -o"])
        .no_panic();
    run_guest("hello_p1", "noepoch", &[])
        .expect_code(0)
        .stdout_has(&["hello from arcella"]);
}

/// On 64-bit hosts the built-in engine reserves 4 GiB per linear memory:
/// under `ulimit -v 262144` that cannot work, and `arcella run` says so
/// before any mmap fails.
#[cfg(target_pointer_width = "64")]
#[test]
fn a_large_reservation_under_a_small_address_space_names_the_fix() {
    let path = artifact("hello_p1", "native");
    arcella_under_ulimit_v(256 * 1024, [OsStr::new("run"), path.as_os_str()])
        .expect_code(code::CANNOT_RUN)
        .stderr_has(&["256 MiB of address space", "4 GiB", "memory_reservation"])
        .no_panic();
}

/// A guest's output that is not UTF-8 reaches `arcella run`'s stdout byte
/// for byte: a terminal program is the guest's business, not ours.
#[test]
fn output_that_is_not_utf8_passes_through_arcella_run_unchanged() {
    for target in TARGETS {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_arcella"))
            .arg("run")
            .arg(artifact("not_utf8", target))
            .env_clear()
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.stdout, b"bad \xff\xfe here\nafter \xe2\x9c\x93\n", "{target}");
    }
}

/// WASI interfaces older or newer than the daemon's (0.2.12) on its track
/// are accepted, as wasmtime links them; 0.3.0 is another track: refused
/// before it runs, naming the import and the version the daemon provides.
#[test]
fn wasi_versions_on_the_daemons_track_run_and_another_track_is_refused_by_name() {
    for target in TARGETS {
        for older_or_newer in ["wasi_older", "wasi_newer_patch"] {
            run_guest(older_or_newer, target, &[]).expect_code(0).no_panic();
        }
        run_guest("wasi_next_track", target, &[])
            .expect_code(code::CANNOT_RUN)
            .stderr_has(&[
                "wasi:random/random@0.3.0",
                "provides wasi:random/random@0.2.12",
                "rebuild the component against",
            ]);
    }
}
