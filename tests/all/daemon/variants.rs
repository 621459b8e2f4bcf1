//! Which artifact variants a daemon takes: fuel metering only where a
//! module has a fuel limit (both variants load), epoch checks always.

use super::harness::*;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);

fn component(name: &str) -> String {
    format!("name = \"{name}\"\nversion = \"1.0.0\"\n")
}

fn command(isolation: &str, limits: &str) -> String {
    let trusted = if isolation == "main" { "trusted = true\n" } else { "" };
    format!(
        "kind = \"command\"\nisolation = \"{isolation}\"\n{trusted}[restart]\npolicy = \"never\"\n\
         [capabilities]\nargs = [\"exit=5\"]\n[limits]\n{limits}\n"
    )
}

/// A fuel-metered artifact installed without a fuel limit runs (with an
/// unbounded budget), in-process and in a worker; one without metering
/// installed with a fuel limit is refused, naming the fix.
#[test]
fn fuel_metered_artifacts_run_without_a_limit_and_a_limit_needs_metering() {
    let daemon = Daemon::start();
    for isolation in ["main", "worker"] {
        let name = format!("metered-{isolation}");
        daemon
            .install_variant(
                "hello_p1",
                "native-fuel",
                Some(&component(&name)),
                &command(isolation, ""),
            )
            .expect_code(0);
        let status = daemon.wait_for(&name, WAIT, "exited", |s| state_name(s) == "exited");
        assert_eq!(status["exit_code"], 5, "{isolation}: {status}");
    }

    daemon
        .install_variant(
            "cpu_loop_p1",
            "native",
            Some(&component("unmetered")),
            &command("worker", "fuel = 100000"),
        )
        .expect_code(1)
        .stderr_has(&[
            "limits.fuel = 100000",
            "compiled without fuel metering",
            "arcella compile cpu_loop_p1.wasm -o OUT.cwasm --fuel",
        ])
        .no_panic();
    assert!(daemon.status("unmetered").is_none(), "nothing was installed");
}

/// The daemon needs epoch checks (fair yielding, timeouts, stopping a
/// guest): an artifact compiled with --no-epoch is refused at install.
#[test]
fn an_artifact_without_epoch_checks_is_refused_at_install() {
    let daemon = Daemon::start();
    daemon
        .install_variant("hello_p1", "noepoch", Some(&component("noepoch")), &command("main", ""))
        .expect_code(1)
        .stderr_has(&["compiled for engine", "this engine is", "arcella compile hello_p1.wasm"])
        .no_panic();
}

/// A daemon start trusts the store's sealed record instead of re-hashing
/// each code file (docs/security.md, "The artifact store"), and still
/// refuses one whose size does not match: the module is kept, not run,
/// and says to reinstall it.
#[test]
fn a_truncated_code_file_is_refused_at_the_next_start() {
    let mut daemon = Daemon::start();
    daemon
        .install("hello_p1", Some(&component("kept")), &command("main", ""))
        .expect_code(0);
    daemon.wait_for("kept", WAIT, "exited", |s| state_name(s) == "exited");
    daemon.terminate();
    let store = daemon.data_dir().join("artifacts");
    let code = std::fs::read_dir(&store)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "code"))
        .unwrap();
    let bytes = std::fs::read(&code).unwrap();
    std::fs::write(&code, &bytes[..bytes.len() / 2]).unwrap();

    daemon.spawn();
    let status = daemon.status("kept").expect("the module is still installed");
    let error = status["last_error"].as_str().unwrap_or_default();
    assert!(
        error.contains("damaged") && error.contains("bytes") && error.contains("reinstall"),
        "{status}"
    );
}

/// A daemon with the compiler compiles an uploaded `.wasm` with fuel
/// metering exactly when its deployment sets a fuel limit.
#[cfg(feature = "compiler")]
#[test]
fn an_uploaded_wasm_is_compiled_with_fuel_metering_when_its_deployment_needs_it() {
    let daemon = Daemon::start();
    let dir = daemon.dir.path();
    let wasm = crate::support::wasm("cpu_loop_p1");
    for (name, limits) in [("metered", "fuel = 100000"), ("plain", "")] {
        let component = write(dir, &format!("{name}-c.toml"), &component(name));
        let deployment = write(dir, &format!("{name}-d.toml"), &command("worker", limits));
        daemon.install_file(&wasm, &component, &deployment).expect_code(0);
    }
    let status = daemon.wait_for("metered", WAIT, "failed", |s| state_name(s) == "failed");
    let reason = status["failure"].as_str().unwrap();
    assert!(reason.contains("fuel exhausted"), "{reason}");
    let status = daemon.wait_for("plain", WAIT, "exited", |s| state_name(s) == "exited");
    assert_eq!(status["exit_code"], 0, "{status}");
    let inspected = daemon.cli(["inspect", "metered"]);
    let plain = daemon.cli(["inspect", "plain"]);
    assert_ne!(
        inspected
            .expect_code(0)
            .stdout
            .lines()
            .find(|l| l.starts_with("fingerprint")),
        plain
            .expect_code(0)
            .stdout
            .lines()
            .find(|l| l.starts_with("fingerprint")),
        "two variants"
    );
}
