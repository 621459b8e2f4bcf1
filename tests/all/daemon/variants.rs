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
        let status = daemon.wait_for(&name, WAIT, "exited", |s| state_name(s) == "Exited");
        assert_eq!(status["summary"]["state"]["Exited"]["code"], 5, "{isolation}: {status}");
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
