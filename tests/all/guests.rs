//! Guests that finish by themselves: output, arguments, environment, exit
//! codes, for core modules and components, native and pulley.

use crate::support::*;

#[test]
fn hello_prints_args_and_passes_its_exit_code_through() {
    for guest in ["hello_p1", "hello_p2"] {
        for target in TARGETS {
            run_guest(guest, target, &["--", "one", "two words", "exit=7"])
                .expect_code(guest_exit(guest, 7))
                .stdout_has(&["hello from arcella", "arg: one", "arg: two words"])
                .stderr_has(&["hello on stderr"]);
        }
    }
}

#[test]
fn hello_exits_zero_by_default() {
    for guest in ["hello_p1", "hello_p2"] {
        for target in TARGETS {
            run_guest(guest, target, &[])
                .expect_code(0)
                .stdout_has(&["hello from arcella"]);
        }
    }
}

#[test]
fn environment_is_empty_unless_granted() {
    for guest in ["hello_p1", "hello_p2"] {
        for target in TARGETS {
            let bare = run_guest(guest, target, &[]);
            bare.expect_code(0);
            assert!(
                !bare.stdout.contains("env:"),
                "{guest}/{target} saw host env:\n{}",
                bare.stdout
            );

            run_guest(guest, target, &["--env", "GREETING=hi there", "--env", "EMPTY="])
                .expect_code(0)
                .stdout_has(&["env: GREETING=hi there", "env: EMPTY="]);
        }
    }
}

#[test]
fn argv0_is_the_file_name_and_nothing_else_is_passed() {
    for guest in ["hello_p1", "hello_p2"] {
        let ran = run_guest(guest, "pulley64", &[]);
        ran.expect_code(0)
            .stdout_has(&[&format!("argv0: {guest}.pulley64.cwasm\n")]);
        assert!(
            !ran.stdout.contains("arg: "),
            "no arguments were given:\n{}",
            ran.stdout
        );
    }
}

#[test]
fn cpu_loop_computes_the_same_answer_natively_and_in_pulley() {
    for guest in ["cpu_loop_p1", "cpu_loop_p2"] {
        for target in TARGETS {
            run_guest(guest, target, &["--", "20000"])
                .expect_code(0)
                .stdout_has(&["primes below 20000: 2262"]);
        }
    }
}

#[test]
fn a_bounded_memory_user_finishes_within_its_limit() {
    for target in TARGETS {
        run_guest("memory_bomb_p1", target, &["--max-memory", "64M", "--", "8"])
            .expect_code(0)
            .stdout_has(&["allocated 8 MiB"]);
    }
}

#[test]
fn a_reactor_module_is_refused_as_not_a_command() {
    for target in TARGETS {
        run_guest("reactor", target, &[])
            .expect_code(code::CANNOT_RUN)
            .stderr_has(&["reactor.", "not a WASI command", "_start"]);
    }
}

#[test]
fn a_component_without_wasi_cli_run_is_refused() {
    for target in TARGETS {
        run_guest("library_component", target, &[])
            .expect_code(code::CANNOT_RUN)
            .stderr_has(&["library_component.", "not a WASI command"]);
    }
}

#[test]
fn inspect_describes_an_artifact_and_whether_it_loads_here() {
    let host = arcella_core::engine::HOST_TRIPLE;
    for (guest, target, kind, shown, loads) in [
        ("hello_p1", "native", "core module", host, "yes"),
        ("hello_p2", "pulley64", "component", "pulley64", "yes"),
        (
            "hello_p1",
            "aarch64-unknown-linux-gnu",
            "core module",
            "aarch64-unknown-linux-gnu",
            "no",
        ),
        ("hello_p1", "smallres", "core module", host, "no"),
        (
            "hello_p1",
            "native-fuel",
            "core module",
            host,
            "yes (fuel metering, epoch checks",
        ),
        (
            "hello_p1",
            "noepoch",
            "core module",
            host,
            "yes (no fuel metering, no epoch checks",
        ),
    ] {
        let path = artifact(guest, target);
        arcella([std::path::Path::new("inspect"), &path])
            .expect_code(0)
            .stdout_has(&[
                &format!("kind:        {kind}"),
                &format!("fingerprint: wasmtime-48.0.8/{shown}/"),
                &format!("loads here:  {loads}"),
                &format!("source:      {guest}.wasm sha256:"),
            ]);
    }
}

#[test]
fn inspect_speaks_json_too() {
    let path = artifact("hello_p2", "pulley64");
    let ran = arcella(["--json".as_ref(), "inspect".as_ref(), path.as_os_str()]);
    ran.expect_code(0);
    let value: serde_json::Value = serde_json::from_str(&ran.stdout).unwrap();
    assert_eq!(value["kind"], "component");
    assert_eq!(value["loads_here"], true);
    assert!(
        value["fingerprint"]
            .as_str()
            .unwrap()
            .starts_with("wasmtime-48.0.8/pulley64/")
    );
}

/// `arcella run` drives wasmtime-wasi's tokio context on its own thread:
/// a run without a timeout has no other thread (no async-compat tokio
/// thread, no async-io thread); a timeout adds only the epoch ticker.
#[test]
fn a_run_starts_no_helper_thread_it_does_not_need() {
    let sleeper = artifact("sleep_p1", "native");
    for (extra, expected) in [
        (&[][..], vec!["arcella"]),
        (&["--timeout", "60s"][..], vec!["arcella", "arcella-epoch"]),
    ] {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_arcella"))
            .arg("run")
            .args(extra)
            .arg(&sleeper)
            .env_clear()
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Once the guest has printed, it sleeps in poll_oneoff.
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
        assert_eq!(line.trim(), "sleeping");
        // A new thread names itself once it first runs: ask until the
        // names settle (a loaded machine may not have run it yet).
        let names_now = || {
            let tasks = std::fs::read_dir(format!("/proc/{}/task", child.id())).unwrap();
            let mut names: Vec<String> = tasks
                .map(|t| {
                    std::fs::read_to_string(t.unwrap().path().join("comm"))
                        .unwrap()
                        .trim()
                        .to_owned()
                })
                .collect();
            names.sort();
            names
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        let mut names = names_now();
        while names != expected && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
            names = names_now();
        }
        // And no thread comes later.
        std::thread::sleep(std::time::Duration::from_millis(200));
        let later = names_now();
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(names, expected, "{extra:?}");
        assert_eq!(later, expected, "{extra:?}: a thread started later");
    }
}
