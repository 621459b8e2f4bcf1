//! The CLI's contract with scripts, without a daemon: JSON errors for
//! every exit code, completions, flags only where they are used, built-in
//! boards, runnable advice. (With a daemon: daemon/cli.rs.)

use crate::support::{Ran, arcella, artifact, code};
use std::ffi::OsStr;
use std::path::Path;

/// The one `{"error": …}` line of a `--json` failure, checked against the
/// exit code; returns its kind.
#[track_caller]
fn json_error(ran: &Ran, exit: i32) -> String {
    ran.expect_code(exit).no_panic();
    let line = ran.stderr.lines().last().unwrap_or_default();
    let value: serde_json::Value =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("not one JSON error ({e}):\n{}", ran.stderr));
    let error = &value["error"];
    assert_eq!(error["exit_code"], exit, "{value}");
    assert!(!error["message"].as_str().unwrap_or_default().is_empty(), "{value}");
    error["kind"].as_str().unwrap().to_owned()
}

fn run_json(guest: &str, extra: &[&str]) -> Ran {
    // --fuel needs an artifact compiled with fuel metering.
    let target = if extra.first() == Some(&"--fuel") && guest == "cpu_loop_p1" {
        "native-fuel"
    } else {
        "native"
    };
    let path = artifact(guest, target);
    let mut args: Vec<&OsStr> = vec![OsStr::new("--json"), OsStr::new("run"), path.as_os_str()];
    args.extend(extra.iter().map(OsStr::new));
    arcella(args)
}

#[test]
fn json_errors_name_a_kind_for_every_exit_code_of_run_and_usage() {
    let cases: [(Ran, i32, &str); 8] = [
        (arcella(["--json", "list", "--bogus"]), 2, "usage"),
        (run_json("hello_p1", &["--fuel", "nope"]), 2, "usage"),
        (
            arcella(["--json", "run", "/nonexistent.cwasm"]),
            code::CANNOT_RUN,
            "cannot_run",
        ),
        (run_json("unreachable", &[]), code::TRAP, "trap"),
        (run_json("cpu_loop_p1", &["--fuel", "100000"]), code::FUEL, "fuel"),
        (
            run_json("memory_bomb_p1", &["--max-memory", "16M"]),
            code::MEMORY,
            "memory",
        ),
        (run_json("deep_recursion_p1", &[]), code::STACK, "stack"),
        (
            run_json("infinite_loop", &["--timeout", "300ms"]),
            code::TIMEOUT,
            "timeout",
        ),
    ];
    for (ran, exit, kind) in &cases {
        assert_eq!(json_error(ran, *exit), *kind, "{}", ran.stderr);
    }
}

#[test]
fn json_errors_of_the_management_verbs_exit_1_with_their_kind() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("nobody-serves.sock");
    let ran = arcella([
        "--json".as_ref(),
        "status".as_ref(),
        "x".as_ref(),
        "--socket".as_ref(),
        socket.as_os_str(),
    ]);
    assert_eq!(json_error(&ran, code::FAILURE), "unreachable");
    // Read before any daemon is asked.
    let missing = dir.path().join("missing.toml");
    let ran = arcella([
        "--json".as_ref(),
        "install".as_ref(),
        "x.cwasm".as_ref(),
        "--deployment".as_ref(),
        missing.as_os_str(),
    ]);
    assert_eq!(json_error(&ran, code::FAILURE), "io");
    assert!(
        ran.stdout.is_empty(),
        "an error put something on stdout: {}",
        ran.stdout
    );
}

#[test]
fn a_manifest_refused_before_upload_is_named_as_given() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "kind = \"daemon\"\n").unwrap();
    arcella([
        "install".as_ref(),
        "x.cwasm".as_ref(),
        "--deployment".as_ref(),
        bad.as_os_str(),
    ])
    .expect_code(code::FAILURE)
    .stderr_has(&[&format!("{}:1:", bad.display()), "kind"]);
}

#[test]
fn completions_are_written_for_bash_zsh_and_fish() {
    for (shell, marker) in [
        ("bash", "complete -F _arcella"),
        ("zsh", "#compdef arcella"),
        ("fish", "complete -c arcella"),
    ] {
        let ran = arcella(["completions", shell]);
        ran.expect_code(0).stdout_has(&[marker, "install"]);
    }
}

#[test]
fn completions_for_an_unknown_shell_are_a_usage_error_listing_the_shells() {
    arcella(["completions", "tcsh"])
        .expect_code(2)
        .stderr_has(&["invalid value 'tcsh'", "bash, zsh, fish"]);
    let ran = arcella(["--json", "completions", "tcsh"]);
    assert_eq!(json_error(&ran, 2), "usage");
    assert!(ran.stderr.contains("bash, zsh, fish"), "{}", ran.stderr);
}

#[test]
fn connection_flags_show_and_work_only_on_verbs_that_talk_to_a_daemon() {
    for verb in ["run", "keygen", "sign", "completions", "daemon"] {
        let help = arcella([verb, "--help"]);
        for flag in ["--broker", "--device"] {
            assert!(!help.expect_code(0).stdout.contains(flag), "{verb} --help shows {flag}");
        }
    }
    arcella(["status", "--help"])
        .expect_code(0)
        .stdout_has(&["--socket", "--broker", "--device", "--key"]);
    let ran = arcella(["--socket", "/tmp/x.sock", "keygen", "--out", "/nonexistent/k"]);
    ran.expect_code(2)
        .stderr_has(&["--socket is for the verbs that manage a daemon"]);
    arcella(["keygen", "--socket", "/tmp/x.sock"])
        .expect_code(2)
        .stderr_has(&["--socket"]);
}

#[test]
fn logs_tail_help_shows_no_default_of_zero() {
    let help = arcella(["logs", "--help"]);
    help.expect_code(0).stdout_has(&["--tail"]);
    assert!(!help.stdout.contains("[default: 0]"), "{}", help.stdout);
}

#[test]
fn generated_docs_hold_a_man_page_per_verb_and_three_completion_scripts() {
    let dir = tempfile::tempdir().unwrap();
    arcella(["__generate-docs".as_ref(), dir.path().as_os_str()]).expect_code(0);
    for page in [
        "arcella.1",
        "arcella-install.1",
        "arcella-fleet.1",
        "arcella-fleet-deploy.1",
    ] {
        let text = std::fs::read_to_string(dir.path().join("man").join(page)).unwrap();
        assert!(text.starts_with(".ie") || text.contains(".TH"), "{page}: {text}");
    }
    assert!(!dir.path().join("man/arcella-__generate-docs.1").exists());
    for script in ["arcella.bash", "_arcella", "arcella.fish"] {
        assert!(dir.path().join("completions").join(script).is_file(), "{script}");
    }
}

#[test]
fn keygen_speaks_json() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("ops");
    let ran = arcella([
        "--json".as_ref(),
        "keygen".as_ref(),
        "--out".as_ref(),
        prefix.as_os_str(),
    ]);
    let value: serde_json::Value = serde_json::from_str(ran.expect_code(0).stdout.trim()).unwrap();
    assert_eq!(value["public_key"].as_str().unwrap().len(), 64, "{value}");
    assert!(Path::new(value["secret_key_file"].as_str().unwrap()).is_file());
}

#[test]
fn a_run_guest_hears_sigterm_through_its_shutdown_call_and_exits_by_itself() {
    use std::process::{Command, Stdio};
    let path = artifact("graceful_p1", "native");
    let start = |extra: &[&str]| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_arcella"))
            .arg("run")
            .arg(&path)
            .args(extra)
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // It prints "working" once it runs.
        let mut first = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.as_mut().unwrap()), &mut first).unwrap();
        assert_eq!(first.trim(), "working");
        crate::daemon::harness::send_signal(child.id(), "TERM");
        child
    };
    let out = start(&[]).wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("shutdown requested"));
    // One that ignores the call is ended after its grace: 128 + SIGTERM.
    let begun = std::time::Instant::now();
    let out = start(&["--grace", "300ms", "--", "ignore"]).wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(143), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(begun.elapsed() >= std::time::Duration::from_millis(300));
}

#[test]
fn a_32_bit_arm_target_points_to_pulley32_and_the_board() {
    let dir = tempfile::tempdir().unwrap();
    let wat = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/ticker/ticker.wat");
    if !cfg!(feature = "compiler") {
        return;
    }
    let out = dir.path().join("t.cwasm");
    arcella([
        "compile".as_ref(),
        wat.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
        "--target".as_ref(),
        "armv7-unknown-linux-gnueabihf".as_ref(),
    ])
    .expect_code(code::FAILURE)
    .stderr_has(&["--target pulley32", "--board armv7-hf"]);
}

#[test]
fn a_board_name_compiles_outside_a_checkout_from_the_built_in_boards() {
    if !cfg!(feature = "compiler") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let wat = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/ticker/ticker.wat");
    let out = dir.path().join("t.cwasm");
    // An empty directory: no board-configs/ here, no ~/.config.
    crate::support::arcella_in(
        Some(dir.path()),
        [
            "compile".as_ref(),
            wat.as_os_str(),
            "-o".as_ref(),
            out.as_os_str(),
            "--board".as_ref(),
            "rpi4-aarch64".as_ref(),
        ],
    )
    .expect_code(0)
    .stderr_has(&["board rpi4-aarch64"]);
    assert!(out.is_file());
}
