//! A full disk: the daemon's own records still get written.
//!
//! What broke: a guest filled the data directory's file system through a
//! granted directory, and then even `stop` failed ("saving the module
//! record: No space left on device").

use super::harness::*;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

#[test]
fn stop_start_and_remove_work_after_a_guest_filled_the_disk() {
    let daemon = Daemon::start_on_small_disk(8);
    daemon
        .install("ticker", Some(TICKER_COMPONENT), TICKER_SERVICE)
        .expect_code(0);
    let filler = format!(
        "kind = \"command\"\ngroup = \"filler\"\n[restart]\npolicy = \"never\"\n\
         [[capabilities.dirs]]\nhost = \"{}\"\nguest = \"/data\"\nmode = \"rw\"\n",
        daemon.disk().join("grant").display()
    );
    daemon
        .install("disk_filler", Some("name = \"filler\"\nversion = \"1\"\n"), &filler)
        .expect_code(0);
    let status = daemon.wait_for("filler", WAIT, "done filling", |s| state_name(s) == "exited");
    assert_eq!(status["exit_code"], 0, "{status}");
    daemon.cli(["stop", "ticker"]).expect_code(0);
    assert!(daemon.log().contains("used the daemon's reserve"), "{}", daemon.log());
    daemon.cli(["start", "ticker"]).expect_code(0);
    daemon.wait_for("ticker", WAIT, "running again", |s| state_name(s) == "running");
    daemon.cli(["remove", "ticker"]).expect_code(0);
    daemon.cli(["remove", "filler"]).expect_code(0);
    assert!(daemon.status("ticker").is_none() && daemon.status("filler").is_none());
}

/// A granted read-write directory with a `quota`: the module that fills it
/// past the quota fails, naming the directory and the quota, and whatever
/// else runs is untouched.
#[test]
fn a_module_past_its_directory_quota_fails_naming_it() {
    let daemon = Daemon::start_on_small_disk(16);
    daemon
        .install("ticker", Some(TICKER_COMPONENT), TICKER_SERVICE)
        .expect_code(0);
    let grant = daemon.disk().join("grant");
    let filler = format!(
        "kind = \"service\"\n[restart]\npolicy = \"always\"\n\
         [[capabilities.dirs]]\nhost = \"{}\"\nguest = \"/data\"\nmode = \"rw\"\nquota = \"1M\"\n",
        grant.display()
    );
    daemon
        .install("quota_filler", Some("name = \"filler\"\nversion = \"1\"\n"), &filler)
        .expect_code(0);
    let status = daemon.wait_for("filler", WAIT, "failed", |s| state_name(s) == "failed");
    let failure = status["failure"].as_str().unwrap();
    assert!(
        failure.contains("disk quota of 1 MiB exceeded in") && failure.contains(&grant.display().to_string()),
        "{failure}"
    );
    assert_eq!(state_name(&daemon.status("ticker").unwrap()), "running");
}

#[test]
fn a_quota_on_a_read_only_directory_is_refused_at_install() {
    let daemon = Daemon::start();
    daemon
        .install(
            "ticker",
            Some(TICKER_COMPONENT),
            "[[capabilities.dirs]]\nhost = \"/srv\"\nguest = \"/data\"\nquota = \"1M\"\n",
        )
        .expect_code(1)
        .stderr_has(&["quota", "read-write directories only"]);
    assert!(daemon.status("ticker").is_none());
}
