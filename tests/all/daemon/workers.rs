//! Untrusted modules in worker processes: real `arcella-worker` processes,
//! jailed, one per group, crashing, hanging and running out of memory
//! without disturbing anything else.

use super::harness::*;
use std::path::Path;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(15);

fn ticker(name: &str) -> String {
    format!("name = \"{name}\"\nversion = \"1.0.0\"\n")
}

fn service_in(group: &str) -> String {
    format!("kind = \"service\"\ngroup = \"{group}\"\n[restart]\nbackoff_initial = \"100ms\"\n")
}

/// The pid of the worker hosting `id`, once it runs there.
pub(super) fn worker_pid(daemon: &Daemon, id: &str) -> u32 {
    let status = daemon.wait_for(id, WAIT, "hosted by a worker", |s| {
        state_name(s) == "running" && s["worker_pid"].is_u64()
    });
    status["worker_pid"].as_u64().unwrap() as u32
}

pub(super) fn proc_file(pid: u32, file: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/{file}")).unwrap_or_default()
}

/// `Name:\tvalue` from /proc/PID/status.
fn proc_status(pid: u32, key: &str) -> String {
    proc_file(pid, "status")
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .map(|v| v.trim().to_owned())
        .unwrap_or_default()
}

/// Gone, or a zombie nobody reaped yet.
pub(super) fn is_gone(pid: u32) -> bool {
    let stat = proc_file(pid, "stat");
    stat.is_empty() || stat.rsplit(") ").next().is_some_and(|rest| rest.starts_with('Z'))
}

fn wait_gone(pid: u32, daemon: &Daemon) {
    let deadline = Instant::now() + WAIT;
    while !is_gone(pid) {
        assert!(
            Instant::now() < deadline,
            "worker {pid} is still there:\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn daemon_pid(daemon: &Daemon) -> u32 {
    daemon.cli(["--json", "info"]);
    let pid = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .find(|pid| {
            let cmdline = proc_file(*pid, "cmdline");
            cmdline.contains("daemon") && cmdline.contains(&*daemon.socket().to_string_lossy())
        });
    pid.expect("the daemon's pid")
}

#[test]
fn a_worker_module_runs_jailed_and_its_worker_exits_with_its_last_module() {
    let daemon = Daemon::start();
    daemon
        .install("ticker", Some(&ticker("ticker")), &service_in("sensors"))
        .expect_code(0);
    let pid = worker_pid(&daemon, "ticker");
    assert_ne!(pid, daemon_pid(&daemon), "the guest must not run in the daemon");
    daemon
        .cli(["status", "ticker"])
        .expect_code(0)
        .stdout_has(&["worker:      group sensors, pid"]);
    let deadline = Instant::now() + WAIT;
    while !daemon.cli(["logs", "ticker"]).stdout.contains("out | tick") {
        assert!(Instant::now() < deadline, "no tick relayed:\n{}", daemon.log());
        std::thread::sleep(Duration::from_millis(50));
    }

    // The jail, as the kernel reports it.
    let uid = proc_status(pid, "Uid");
    assert!(!uid.starts_with("0\t"), "the worker runs as root: {uid}");
    assert_eq!(proc_status(pid, "NoNewPrivs"), "1");
    // Non-dumpable: its /proc files (not the directory) belong to root.
    let owner = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(format!("/proc/{pid}/status")).unwrap());
    assert_eq!(
        owner, 0,
        "the worker is dumpable: /proc/{pid}/status belongs to uid {owner}"
    );
    if cfg!(any(target_arch = "x86_64", target_arch = "aarch64")) {
        assert_eq!(proc_status(pid, "Seccomp"), "2", "no seccomp filter on the worker");
    }
    assert_eq!(proc_file(pid, "environ"), "", "the worker inherited an environment");
    let stat = proc_file(pid, "stat");
    let fields: Vec<&str> = stat.rsplit(") ").next().unwrap().split(' ').collect();
    assert_eq!(fields[3], pid.to_string(), "the worker leads its own session");
    let limits = proc_file(pid, "limits");
    let line = |name: &str| {
        limits
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_default()
            .to_owned()
    };
    assert!(line("Max data size").contains(&(128u64 << 20).to_string()), "{limits}");
    assert!(
        line("Max core file size").split_whitespace().any(|w| w == "0"),
        "{limits}"
    );
    assert!(line("Max open files").contains("64"), "{limits}");
    for fd in std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap() {
        let target = std::fs::read_link(fd.unwrap().path()).unwrap_or_default();
        let shown = target.to_string_lossy();
        let allowed = shown == "/dev/null"
            || shown.starts_with("pipe:")
            || shown.starts_with("socket:")
            || shown.starts_with("anon_inode:")
            || target.starts_with(daemon.data_dir().join("artifacts"))
            // Its own memory figures, opened before its walls went up.
            || target == Path::new(&format!("/proc/{pid}/statm"));
        assert!(allowed, "the worker holds {shown}");
    }

    // Its last module stops: it exits; the next start makes a new one.
    daemon.cli(["stop", "ticker"]).expect_code(0);
    wait_gone(pid, &daemon);
    daemon.cli(["start", "ticker"]).expect_code(0);
    let again = worker_pid(&daemon, "ticker");
    assert_ne!(again, pid);
    assert!(daemon.log().contains("exited: no modules left"), "{}", daemon.log());
}

#[test]
fn a_crashed_worker_takes_only_its_own_group_down_and_comes_back() {
    let daemon = Daemon::start();
    daemon
        .install("ticker", Some(&ticker("left")), &service_in("left"))
        .expect_code(0);
    daemon
        .install("ticker", Some(&ticker("right")), &service_in("right"))
        .expect_code(0);
    daemon
        .install("ticker", Some(&ticker("inside")), TICKER_SERVICE)
        .expect_code(0);
    let left = worker_pid(&daemon, "left");
    let right = worker_pid(&daemon, "right");
    assert_ne!(left, right, "each group has its own worker");

    send_signal(left, "KILL");
    let status = daemon.wait_for("left", WAIT, "restarted in a new worker", |s| {
        state_name(s) == "running" && s["worker_pid"].as_u64().is_some_and(|p| p as u32 != left)
    });
    assert!(status["restarts"].as_u64().unwrap() >= 1);
    let error = status["last_error"].as_str().unwrap_or_default();
    assert!(
        error.contains("killed by signal SIGKILL") && error.contains("left"),
        "{error}"
    );
    assert_eq!(
        worker_pid(&daemon, "right"),
        right,
        "the other group's worker was disturbed"
    );
    assert_eq!(state_name(&daemon.status("inside").unwrap()), "running");
    assert_eq!(daemon.status("right").unwrap()["restarts"], 0);

    // A worker that aborts (a fault in its runtime: wasmtime handles SIGSEGV
    // itself, for guest traps) is noticed the same way.
    send_signal(right, "ABRT");
    let status = daemon.wait_for("right", WAIT, "restarted in a new worker", |s| {
        state_name(s) == "running" && s["worker_pid"].as_u64().is_some_and(|p| p as u32 != right)
    });
    let error = status["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("SIGABRT"), "{error}");
    assert_eq!(state_name(&daemon.status("inside").unwrap()), "running");
}

#[test]
fn restart_update_and_remove_work_on_a_worker_module() {
    let daemon = Daemon::start();
    daemon
        .install("ticker", Some(&ticker("ticker")), &service_in("g"))
        .expect_code(0);
    let first = worker_pid(&daemon, "ticker");
    daemon
        .cli(["restart", "ticker"])
        .expect_code(0)
        .stdout_has(&["is running"]);
    let status = daemon.wait_for("ticker", WAIT, "running again", |s| {
        state_name(s) == "running" && s["worker_pid"].is_u64()
    });
    assert!(status["started_at"].is_u64());

    let dir = daemon.dir.path();
    let component = write(dir, "c2.toml", "name = \"ticker\"\nversion = \"1.1.0\"\n");
    let deployment = write(dir, "d2.toml", &service_in("g"));
    let artifact = arcella_test_programs::artifact("ticker", "native");
    daemon
        .update("ticker", &artifact, &component, &deployment)
        .expect_code(0)
        .stdout_has(&["ticker 1.1.0 is running"]);
    let status = daemon.wait_for("ticker", WAIT, "running 1.1.0 in a worker", |s| {
        s["version"] == "1.1.0" && state_name(s) == "running" && s["worker_pid"].is_u64()
    });
    assert_eq!(status["previous_version"], "1.0.0");
    let host = status["worker_pid"].as_u64().unwrap() as u32;

    daemon.cli(["remove", "ticker"]).expect_code(0);
    wait_gone(host, &daemon);
    wait_gone(first, &daemon);
}

#[test]
fn a_forbidden_system_call_is_reported_as_such() {
    let daemon = Daemon::start();
    let deployment = "kind = \"service\"\ngroup = \"g\"\n[restart]\npolicy = \"never\"\n";
    daemon
        .install("ticker", Some(&ticker("ticker")), deployment)
        .expect_code(0);
    let pid = worker_pid(&daemon, "ticker");
    // What the kernel does to a worker whose seccomp filter trips.
    send_signal(pid, "SYS");
    let status = daemon.wait_for("ticker", WAIT, "failed", |s| state_name(s) == "failed");
    let reason = status["failure"].as_str().unwrap();
    assert!(
        reason.contains("seccomp") && reason.contains("forbidden system call"),
        "{reason}"
    );
}

#[test]
fn a_hung_worker_is_killed_and_never_hangs_the_daemon() {
    let daemon = Daemon::start_with_config(
        "shutdown_grace = \"500ms\"\n[workers]\nipc_timeout = \"500ms\"\nkill_grace = \"300ms\"\n",
    );
    daemon
        .install(
            "graceful_p1",
            Some("name = \"svc\"\nversion = \"1.0.0\"\n"),
            &service_in("stuck"),
        )
        .expect_code(0);
    let pid = worker_pid(&daemon, "svc");
    send_signal(pid, "STOP");
    let asked = Instant::now();
    daemon.cli(["stop", "svc"]).expect_code(0);
    assert!(asked.elapsed() < Duration::from_secs(2), "stop waited on a hung worker");
    daemon.cli(["list"]).expect_code(0);
    wait_gone(pid, &daemon);
    let log = daemon.log();
    assert!(log.contains("did not cancel an instance"), "{log}");
    assert!(log.contains("killing it"), "{log}");
    assert_eq!(state_name(&daemon.status("svc").unwrap()), "stopped");
}

#[test]
fn limits_hold_inside_workers() {
    let daemon = Daemon::start();
    let command = |limits: &str| format!("group = \"limits\"\n[restart]\npolicy = \"never\"\n[limits]\n{limits}\n");
    daemon
        .install(
            "infinite_loop",
            Some(&ticker("infinite_loop")),
            &command("timeout = \"300ms\""),
        )
        .expect_code(0);
    let status = daemon.wait_for("infinite_loop", WAIT, "failed", |s| state_name(s) == "failed");
    let reason = status["failure"].as_str().unwrap();
    assert!(reason.contains("timeout") && reason.contains("300ms"), "{reason}");

    daemon
        .install_variant(
            "cpu_loop_p1",
            "native-fuel",
            Some(&ticker("cpu_loop_p1")),
            &command("fuel = 100000"),
        )
        .expect_code(0);
    let status = daemon.wait_for("cpu_loop_p1", WAIT, "failed", |s| state_name(s) == "failed");
    let reason = status["failure"].as_str().unwrap();
    assert!(reason.contains("fuel exhausted"), "{reason}");

    daemon
        .install(
            "memory_bomb_p1",
            Some(&ticker("memory_bomb_p1")),
            &command("memory = \"4MiB\""),
        )
        .expect_code(0);
    let status = daemon.wait_for("memory_bomb_p1", WAIT, "done", |s| {
        matches!(state_name(s).as_str(), "failed" | "exited")
    });
    let text = status.to_string();
    assert!(text.contains("memory") && text.contains("4194304"), "{text}");
}

#[test]
fn a_memory_bomb_beyond_the_group_budget_is_stopped_inside_its_own_worker() {
    let daemon = Daemon::start_with_config("[workers.groups.bombs]\nmemory = \"48MiB\"\n");
    daemon
        .install("ticker", Some(&ticker("calm")), &service_in("calm"))
        .expect_code(0);
    let calm = worker_pid(&daemon, "calm");
    let daemon_rss = || proc_status(daemon_pid(&daemon), "VmRSS");
    let before = kib(&daemon_rss());
    daemon
        .install(
            "memory_bomb_p1",
            Some(&ticker("memory_bomb_p1")),
            "group = \"bombs\"\n[restart]\npolicy = \"never\"\n[capabilities]\nargs = [\"400\"]\n",
        )
        .expect_code(0);
    let status = daemon.wait_for("memory_bomb_p1", WAIT, "failed", |s| state_name(s) == "failed");
    let reason = status["failure"].as_str().unwrap().to_owned();
    assert!(
        reason.contains("out of host memory") && reason.contains("workers.memory"),
        "{reason}"
    );
    let logs = daemon.cli(["logs", "memory_bomb_p1"]).stdout;
    assert!(
        !logs.contains("allocated 400 MiB"),
        "the bomb got past its budget:\n{logs}"
    );
    assert_eq!(worker_pid(&daemon, "calm"), calm, "another group's worker was touched");
    let after = kib(&daemon_rss());
    assert!(
        after < before + 8 * 1024,
        "the daemon grew from {before} to {after} KiB while a worker blew up"
    );
}

fn kib(vm_rss: &str) -> u64 {
    vm_rss
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[test]
fn guest_escapes_fail_in_a_worker_and_the_daemon_data_stays_out_of_reach() {
    use std::os::unix::fs::{PermissionsExt, symlink};
    let daemon = Daemon::start();
    // The worker runs as an unprivileged user: the granted tree must be
    // reachable by it, as an operator would arrange.
    let root = daemon.dir.path().join("grant-root");
    let data = root.join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(root.join("outside.txt"), "secret").unwrap();
    symlink("..", data.join("link-out")).unwrap();
    symlink("../outside.txt", data.join("link-to-outside-file")).unwrap();
    for dir in [daemon.dir.path(), root.as_path(), data.as_path()] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    let grant = |host: &Path, args: &str| {
        format!(
            "group = \"files\"\n[restart]\npolicy = \"never\"\n[capabilities]\nargs = [\"{args}\"]\n\
             [[capabilities.dirs]]\nhost = \"{}\"\nguest = \"/data\"\nmode = \"rw\"\n",
            host.display()
        )
    };
    daemon
        .install("files_p1", Some(&ticker("files_p1")), &grant(&data, "escape"))
        .expect_code(0);
    let status = daemon.wait_for("files_p1", WAIT, "exited", |s| state_name(s) == "exited");
    let logs = daemon.cli(["logs", "files_p1"]).stdout;
    assert_eq!(status["exit_code"], 0, "{logs}");
    assert!(!logs.contains("ESCAPED"), "{logs}");
    assert_eq!(logs.matches("blocked: ").count(), 8, "{logs}");
    assert!(!root.join("planted.txt").exists());

    // Even a deployment that grants the daemon's own data directory gets
    // nothing from it: the worker's user cannot open it.
    let secret = daemon.data_dir().join("in.txt");
    std::fs::write(&secret, "the daemon's own file").unwrap();
    daemon
        .install("files_p2", None, &grant(&daemon.data_dir(), "write-read"))
        .expect_code(0);
    daemon.wait_for("files_p2", WAIT, "exited", |s| state_name(s) == "exited");
    let logs = daemon.cli(["logs", "files_p2"]).stdout;
    assert!(
        logs.contains("read failed") && logs.contains("Permission denied"),
        "{logs}"
    );
    assert!(!logs.contains("the daemon's own file"), "{logs}");
    assert!(
        !daemon.data_dir().join("out.txt").exists(),
        "the guest wrote into the daemon's data"
    );

    // No socket either; asking for one is an error for the guest, not a
    // forbidden system call that would take its worker down.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let net = format!("group = \"files\"\n[restart]\npolicy = \"never\"\n[capabilities]\nargs = [\"{addr}\"]\n");
    daemon.install("net_p2", None, &net).expect_code(0);
    let status = daemon.wait_for("net_p2", WAIT, "exited", |s| state_name(s) == "exited");
    let logs = daemon.cli(["logs", "net_p2"]).stdout;
    assert_eq!(status["exit_code"], 0, "{logs}");
    assert!(logs.contains("blocked: connect"), "{logs}");
    assert!(listener.accept().is_err(), "the guest reached the listener");
}

#[test]
fn components_run_in_workers_and_workers_go_with_the_daemon() {
    let mut daemon = Daemon::start();
    daemon
        .install("hello_p2", None, "group = \"p2\"\n[restart]\npolicy = \"never\"\n")
        .expect_code(0);
    let status = daemon.wait_for("hello_p2", WAIT, "exited", |s| state_name(s) == "exited");
    assert_eq!(status["exit_code"], 0);
    daemon.cli(["logs", "hello_p2"]).stdout_has(&["out | hello"]);

    daemon
        .install("ticker", Some(&ticker("ticker")), &service_in("g"))
        .expect_code(0);
    let pid = worker_pid(&daemon, "ticker");
    assert_eq!(daemon.terminate(), Some(0));
    wait_gone(pid, &daemon);

    // And with a daemon that dies without a word (parent-death signal).
    daemon.spawn();
    let pid = worker_pid(&daemon, "ticker");
    daemon.kill();
    wait_gone(pid, &daemon);
}

#[test]
fn the_worker_binary_refuses_to_run_by_hand() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_arcella-worker"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("started by the arcella daemon"), "{stderr}");
}

#[test]
fn a_missing_worker_binary_fails_the_module_and_says_where_it_looked() {
    let daemon = Daemon::start_with_config("[workers]\nbinary = \"/nonexistent/arcella-worker\"\n");
    let deployment = "kind = \"service\"\n[restart]\npolicy = \"never\"\n";
    daemon
        .install("ticker", Some(&ticker("ticker")), deployment)
        .expect_code(0);
    let status = daemon.wait_for("ticker", WAIT, "failed", |s| state_name(s) == "failed");
    let reason = status["failure"].as_str().unwrap();
    assert!(
        reason.contains("/nonexistent/arcella-worker") && reason.contains("workers.binary"),
        "{reason}"
    );
    daemon
        .install("ticker", Some(&ticker("inside")), TICKER_SERVICE)
        .expect_code(0)
        .stdout_has(&["inside 1.0.0 is running"]);
}

#[test]
fn a_pulley_engine_runs_its_modules_in_workers_too() {
    let daemon = Daemon::start_with_config("[engine]\ntarget = \"pulley64\"\n");
    let dir = daemon.dir.path();
    let component = write(dir, "c.toml", &ticker("hello"));
    let deployment = write(dir, "d.toml", "group = \"interp\"\n[restart]\npolicy = \"never\"\n");
    let artifact = arcella_test_programs::artifact("hello_p1", "pulley64");
    daemon.install_file(&artifact, &component, &deployment).expect_code(0);
    let status = daemon.wait_for("hello", WAIT, "exited", |s| state_name(s) == "exited");
    assert_eq!(status["exit_code"], 0);
    daemon
        .cli(["logs", "hello"])
        .stdout_has(&["out | hello from arcella", "running in worker `interp`"]);
}

/// The inodes of the store's code files that process `pid` has mapped
/// (`/proc/PID/maps`: device, inode, then the path as the jail sees it).
fn mapped_code_files(daemon: &Daemon, pid: u32) -> Vec<u64> {
    let store: Vec<u64> = std::fs::read_dir(daemon.data_dir().join("artifacts"))
        .unwrap()
        .flatten()
        .filter(|entry| entry.path().extension().is_some_and(|ext| ext == "code"))
        .map(|entry| std::os::unix::fs::MetadataExt::ino(&entry.metadata().unwrap()))
        .collect();
    let maps = proc_file(pid, "maps");
    assert!(!maps.is_empty(), "cannot read /proc/{pid}/maps");
    let mut mapped: Vec<u64> = maps
        .lines()
        .filter_map(|line| line.split_whitespace().nth(4)?.parse().ok())
        .filter(|inode| store.contains(inode))
        .collect();
    mapped.sort_unstable();
    mapped.dedup();
    mapped
}

/// One component artifact (one code file in the store) run by two
/// workers, under `config`'s walls; a module keeps the first worker alive
/// once the component stops there. Returns the two workers' pids after
/// checking what they map.
fn two_workers_run_one_component(config: &str, images_from_the_file: bool) {
    let daemon = Daemon::start_with_config(config);
    let sleeper = |group: &str| format!("kind = \"service\"\ngroup = \"{group}\"\n[restart]\npolicy = \"never\"\n");
    for (name, group) in [("keeper", "one"), ("first", "one"), ("second", "two")] {
        let guest = if name == "keeper" { "sleep_p1" } else { "sleep_p2" };
        daemon
            .install(guest, Some(&ticker(name)), &sleeper(group))
            .expect_code(0);
    }
    let one = worker_pid(&daemon, "first");
    assert_eq!(worker_pid(&daemon, "keeper"), one);
    let two = worker_pid(&daemon, "second");
    assert_ne!(one, two);

    // The component's code runs from the same file in both workers (its
    // pages are the page cache's, held once), not from copies.
    let in_two = mapped_code_files(&daemon, two);
    assert_eq!(in_two.len(), 1, "worker two maps the component's code file: {in_two:?}");
    let component = in_two[0];
    let in_one = mapped_code_files(&daemon, one);
    assert!(in_one.contains(&component), "{in_one:?} lacks {component}");
    assert_eq!(
        in_one.len(),
        2,
        "worker one maps the module's and the component's code: {in_one:?}"
    );
    // Its memory images too, where wasmtime could open the file by name;
    // else they are the worker's own copy (a memfd).
    let copied_images = proc_file(two, "maps").contains("memfd:wasm-memory-image");
    assert_eq!(copied_images, !images_from_the_file, "{}", proc_file(two, "maps"));

    // Its last instance in worker one stopped: the mapping goes (a removed
    // artifact's disk space is not held by a mapping), the module's stays.
    daemon.cli(["stop", "first"]).expect_code(0);
    let deadline = Instant::now() + WAIT;
    while mapped_code_files(&daemon, one).contains(&component) {
        assert!(
            Instant::now() < deadline,
            "worker one still maps the stopped component's code"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(mapped_code_files(&daemon, one).len(), 1);
    assert_eq!(mapped_code_files(&daemon, two), vec![component]);

    // And it comes back for the next start, in the same worker.
    daemon.cli(["start", "first"]).expect_code(0);
    assert_eq!(worker_pid(&daemon, "first"), one);
    assert!(mapped_code_files(&daemon, one).contains(&component));

    // Removing the artifact's modules removes the groups' links to it: the
    // store keeps no name for a file nothing uses.
    for name in ["first", "second"] {
        daemon.cli(["remove", name]).expect_code(0);
    }
    let links = daemon.data_dir().join("artifacts/groups");
    let left = crate::support::files_under(&links);
    assert_eq!(left.len(), 1, "only the module's link is left: {left:?}");
}

#[test]
fn landlocked_workers_share_a_components_code_and_memory_images_and_unmap_them_after_its_last_instance() {
    two_workers_run_one_component("[workers]\nfilesystem_walls = \"landlock\"\n", true);
}

#[test]
fn workers_in_mount_namespaces_share_a_components_code_and_unmap_it_after_its_last_instance() {
    two_workers_run_one_component("[workers]\nfilesystem_walls = \"mount-namespace\"\n", false);
}
