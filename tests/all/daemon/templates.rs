//! Workers forked from a template that holds their code loaded
//! (`workers.template_above`): real worker processes, checked as the
//! kernel sees them — whose children they are, what they share, how they
//! are jailed, and that the template goes with them and with the daemon.

use super::harness::*;
use super::workers::{is_gone, proc_file, worker_pid};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(15);

/// Every worker forked from a template, whatever its code's size.
const ALWAYS: &str = "[workers]\ntemplate_above = \"0\"\n";

fn component(name: &str) -> String {
    format!("name = \"{name}\"\nversion = \"1.0.0\"\n")
}

fn sleeper_in(group: &str) -> String {
    format!("kind = \"service\"\ngroup = \"{group}\"\n[restart]\npolicy = \"never\"\n")
}

/// `Key:\tvalue` from /proc/PID/status (or another `Key: value` file).
fn field(text: &str, key: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .map(|v| v.trim().to_owned())
        .unwrap_or_default()
}

fn kib(text: &str, key: &str) -> u64 {
    field(text, key).trim_end_matches(" kB").trim().parse().unwrap_or(0)
}

/// The fields of /proc/PID/stat after the command name.
fn stat(pid: u32) -> Vec<String> {
    let stat = proc_file(pid, "stat");
    stat.rsplit_once(") ")
        .map(|(_, rest)| rest.split(' ').map(str::to_owned).collect())
        .unwrap_or_default()
}

fn parent_of(pid: u32) -> u32 {
    stat(pid)[1].parse().unwrap()
}

fn wait_gone(pid: u32, what: &str, daemon: &Daemon) {
    let deadline = Instant::now() + WAIT;
    while !is_gone(pid) {
        assert!(
            Instant::now() < deadline,
            "{what} {pid} is still there:\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The templates the daemon started (its log names each), still running.
fn templates_of(daemon: &Daemon) -> Vec<u32> {
    let mut pids: Vec<u32> = daemon
        .log()
        .lines()
        .filter_map(|l| l.split_once("worker template (pid ")?.1.split_once(')')?.0.parse().ok())
        .filter(|pid| !is_gone(*pid))
        .collect();
    pids.dedup();
    pids
}

/// The daemon's log line saying `group`'s worker `pid` started.
fn started_line(log: &str, group: &str, pid: u32) -> String {
    let needle = format!("worker `{group}` started (pid {pid}, uid");
    log.lines()
        .find(|l| l.contains(&needle))
        .unwrap_or_else(|| panic!("no line with {needle}:\n{log}"))
        .to_owned()
}

/// The socket inodes a process holds.
fn sockets(pid: u32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .map(|target| target.to_string_lossy().into_owned())
        .filter(|target| target.starts_with("socket:"))
        .collect()
}

#[test]
fn workers_forked_from_a_template_share_its_loaded_code_and_are_jailed_as_their_own_groups() {
    let daemon = Daemon::start_with_config(ALWAYS);
    let daemon_pid = daemon.pid();
    for (name, group) in [("first", "one"), ("second", "two")] {
        daemon
            .install("sleep_p2", Some(&component(name)), &sleeper_in(group))
            .expect_code(0);
    }
    let one = worker_pid(&daemon, "first");
    let two = worker_pid(&daemon, "second");
    assert_ne!(one, two);

    // One template for the one code file, the daemon's child like them.
    let templates = templates_of(&daemon);
    assert_eq!(templates.len(), 1, "templates: {templates:?}\n{}", daemon.log());
    let template = templates[0];
    assert_eq!(parent_of(template), daemon_pid);
    assert!(proc_file(template, "cmdline").ends_with("\0--template\0"));
    for worker in [one, two] {
        assert_eq!(parent_of(worker), daemon_pid, "worker {worker}'s parent");
        assert!(
            daemon.log().contains(&format!("(pid {worker}, uid"))
                && daemon.log().contains(&format!("forked from template {template})")),
            "{}",
            daemon.log()
        );
    }

    // What the template loaded is the workers' memory too: their anonymous
    // pages are partly shared (a worker started by exec shares none).
    for worker in [one, two] {
        let rollup = proc_file(worker, "smaps_rollup");
        assert!(rollup.contains("\nPss_Anon:"), "no Pss_Anon (Linux 5.9+) in {rollup}");
        let (anonymous, pss_anon) = (kib(&rollup, "Anonymous"), kib(&rollup, "Pss_Anon"));
        assert!(
            pss_anon + 256 <= anonymous,
            "worker {worker} shares under 512 KiB of its {anonymous} KiB anonymous memory (PSS {pss_anon} KiB)"
        );
    }

    // Each worker is jailed as its own group: its own uid (never the
    // template's), no new privileges, non-dumpable, seccomp, a session of
    // its own, its group's limits.
    let uid = |pid: u32| field(&proc_file(pid, "status"), "Uid");
    let (uid_one, uid_two) = (uid(one), uid(two));
    assert!(
        !uid_one.starts_with("0\t") && !uid_two.starts_with("0\t"),
        "{uid_one} / {uid_two}"
    );
    if uid(template).starts_with("0\t") {
        assert_ne!(uid_one, uid_two, "two groups share a uid");
    }
    for worker in [one, two] {
        let status = proc_file(worker, "status");
        assert_eq!(field(&status, "NoNewPrivs"), "1");
        assert_eq!(
            field(&status, "Groups"),
            "",
            "worker {worker} kept supplementary groups"
        );
        let owner = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(format!("/proc/{worker}/status")).unwrap());
        assert_eq!(owner, 0, "worker {worker} is dumpable");
        if cfg!(any(target_arch = "x86_64", target_arch = "aarch64")) {
            assert_eq!(field(&status, "Seccomp"), "2", "no seccomp filter on worker {worker}");
        }
        assert_eq!(
            stat(worker)[3],
            worker.to_string(),
            "worker {worker} leads its own session"
        );
        // As `ps` shows a worker the daemon spawned, not as the template.
        let group = if worker == one { "one" } else { "two" };
        assert_eq!(
            proc_file(worker, "cmdline").trim_end_matches('\0'),
            format!("arcella-worker\0--group\0{group}"),
            "ps shows worker {worker} as"
        );
        let limits = proc_file(worker, "limits");
        assert!(
            limits
                .lines()
                .any(|l| l.starts_with("Max data size") && l.contains(&(128u64 << 20).to_string())),
            "{limits}"
        );
        // Its own link only: the template's is not among its sockets.
        let theirs = sockets(template);
        let its = sockets(worker);
        assert!(
            its.iter().all(|s| !theirs.contains(s)),
            "worker {worker} holds the template's link: {its:?}"
        );
        assert_eq!(its.len(), 1, "worker {worker} holds {its:?}");
        // And nothing else of the template's but the code file its
        // inherited program maps.
        for fd in std::fs::read_dir(format!("/proc/{worker}/fd")).unwrap() {
            let target = std::fs::read_link(fd.unwrap().path()).unwrap_or_default();
            let shown = target.to_string_lossy();
            let allowed = shown == "/dev/null"
                || shown.starts_with("pipe:")
                || shown.starts_with("socket:")
                || shown.starts_with("anon_inode:")
                || target.starts_with(daemon.data_dir().join("artifacts"))
                || target == std::path::Path::new(&format!("/proc/{worker}/statm"));
            assert!(allowed, "worker {worker} holds {shown}");
        }
    }
    // The template holds its link to the daemon and nothing else of it.
    assert_eq!(sockets(template).len(), 1, "{:?}", sockets(template));
    let owner = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(format!("/proc/{template}/status")).unwrap());
    assert_eq!(owner, 0, "the template is dumpable");

    // Both run: a stop and a start in a forked worker work as anywhere.
    daemon.cli(["stop", "first"]).expect_code(0);
    wait_gone(one, "worker", &daemon);
    daemon.cli(["start", "first"]).expect_code(0);
    let again = worker_pid(&daemon, "first");
    assert_eq!(parent_of(again), daemon_pid);
    assert_eq!(templates_of(&daemon), vec![template], "the running template is reused");

    // The last worker forked from it goes: so does the template, reaped.
    for name in ["first", "second"] {
        daemon.cli(["remove", name]).expect_code(0);
    }
    wait_gone(two, "worker", &daemon);
    wait_gone(template, "template", &daemon);
    assert!(stat(template).is_empty(), "the template was left a zombie");
}

#[test]
fn a_template_and_its_workers_go_with_the_daemon() {
    let mut daemon = Daemon::start_with_config(ALWAYS);
    daemon
        .install("sleep_p2", Some(&component("sleeper")), &sleeper_in("one"))
        .expect_code(0);
    let worker = worker_pid(&daemon, "sleeper");
    let templates = templates_of(&daemon);
    assert_eq!(templates.len(), 1, "{}", daemon.log());
    daemon.kill();
    wait_gone(worker, "worker", &daemon);
    wait_gone(templates[0], "template", &daemon);
}

#[test]
fn small_code_is_not_worth_a_template_by_default() {
    let daemon = Daemon::start();
    daemon
        .install("sleep_p2", Some(&component("sleeper")), &sleeper_in("one"))
        .expect_code(0);
    let worker = worker_pid(&daemon, "sleeper");
    assert_eq!(parent_of(worker), daemon.pid());
    assert!(templates_of(&daemon).is_empty(), "{}", daemon.log());
    assert!(!daemon.log().contains("forked from template"), "{}", daemon.log());
}

#[test]
fn a_worker_forked_from_a_template_raises_mount_namespace_walls_too() {
    let daemon = Daemon::start_with_config(&format!("{ALWAYS}filesystem_walls = \"mount-namespace\"\n"));
    daemon
        .install("sleep_p2", Some(&component("sleeper")), &sleeper_in("one"))
        .expect_code(0);
    let worker = worker_pid(&daemon, "sleeper");
    let log = daemon.log();
    assert!(log.contains("forked from template"), "{log}");
    assert!(
        log.contains(&format!("worker `one` (pid {worker}): mount-namespace walls up")),
        "{log}"
    );
    // Its root is the namespace's, not the host's.
    let root = std::fs::read_link(format!("/proc/{worker}/root")).unwrap_or_default();
    let own_mounts = proc_file(worker, "mountinfo");
    assert!(
        !own_mounts.is_empty() && own_mounts != proc_file(std::process::id(), "mountinfo"),
        "worker {worker} sees the host's mounts (root {})",
        root.display()
    );
}

/// A template killed under its workers: they run on (the daemon is their
/// parent), the next worker is started afresh and says why, and the one
/// after is forked from a new template.
#[test]
fn a_dead_template_costs_its_sharing_not_its_workers() {
    let daemon = Daemon::start_with_config(ALWAYS);
    daemon
        .install("sleep_p2", Some(&component("first")), &sleeper_in("one"))
        .expect_code(0);
    let one = worker_pid(&daemon, "first");
    let template = templates_of(&daemon)[0];
    send_signal(template, "KILL");
    let deadline = Instant::now() + WAIT;
    while !is_gone(template) {
        assert!(Instant::now() < deadline, "the template outlived SIGKILL");
        std::thread::sleep(Duration::from_millis(20));
    }

    daemon
        .install("sleep_p2", Some(&component("second")), &sleeper_in("two"))
        .expect_code(0);
    let two = worker_pid(&daemon, "second");
    let log = daemon.log();
    assert!(
        log.contains(&format!(
            "worker `two`: the template (pid {template}) could not fork it"
        )),
        "{log}"
    );
    let started = started_line(&log, "two", two);
    assert!(!started.contains("forked"), "{started}");
    assert!(!is_gone(one), "worker one went with its template");
    assert_eq!(
        daemon.status("first").map(|s| state_name(&s)).as_deref(),
        Some("running")
    );

    daemon
        .install("sleep_p2", Some(&component("third")), &sleeper_in("three"))
        .expect_code(0);
    let three = worker_pid(&daemon, "third");
    let fresh = templates_of(&daemon);
    assert_eq!(fresh.len(), 1, "{fresh:?}\n{}", daemon.log());
    assert_ne!(fresh[0], template);
    let started = started_line(&daemon.log(), "three", three);
    assert!(
        started.ends_with(&format!("forked from template {})", fresh[0])),
        "{started}"
    );
}
