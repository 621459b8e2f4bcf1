//! Nothing installable that cannot run: what must fit a worker message or
//! a protocol frame is checked at install, and the error names the limit.

use super::harness::*;
use std::time::Duration;

const HELLO: &str = "name = \"hello\"\nversion = \"1\"\n";

/// `[capabilities] args` of `n` arguments of 1 KiB each, in a worker.
fn args_deployment(n: usize) -> String {
    let arg = format!("\"{}\"", "a".repeat(1024));
    let args = vec![arg; n].join(", ");
    format!("[capabilities]\nargs = [{args}]\n")
}

/// What broke: a deployment whose args total 17 KB was accepted, then its
/// worker was killed every 5 s ("did not confirm the start") together
/// with the healthy modules of its group.
#[test]
fn seventeen_kb_of_args_are_refused_at_install_with_the_limit_named() {
    let daemon = Daemon::start();
    daemon
        .install("hello_p1", Some(HELLO), &args_deployment(17))
        .expect_code(1)
        .stderr_has(&["deployment.toml", "capabilities", "12288 bytes", "16 KiB"]);
    assert!(daemon.status("hello").is_none(), "nothing was installed");
}

/// Just under the limit, the module is installed and runs in its worker
/// with every argument.
#[test]
fn args_just_under_the_limit_reach_the_guest_in_its_worker() {
    let daemon = Daemon::start();
    daemon
        .install("hello_p1", Some(HELLO), &args_deployment(11))
        .expect_code(0);
    let status = daemon.wait_for("hello", Duration::from_secs(15), "exited", |s| {
        state_name(s) == "exited"
    });
    assert_eq!(status["exit_code"], 0, "{status}");
    let logs = daemon.cli(["logs", "hello"]).stdout;
    assert_eq!(logs.matches("arg: aaaa").count(), 11, "{logs}");
}

/// What broke: three modules with 100 KB `version` strings made
/// `arcella list` fail for good (frame too large).
#[test]
fn a_100_kb_version_is_refused_at_install_with_the_limit_named() {
    let daemon = Daemon::start();
    let component = format!("name = \"hello\"\nversion = \"{}\"\n", "1".repeat(100 * 1024));
    daemon
        .install("hello_p1", Some(&component), "")
        .expect_code(1)
        .stderr_has(&["component.toml", "version", "at most 64 bytes"]);
    daemon
        .cli(["list"])
        .expect_code(0)
        .stdout_has(&["no modules installed"]);
}
