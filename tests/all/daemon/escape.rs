//! A worker taken over by its guest, tested the way it was broken: system
//! calls injected into the worker (see `inject.rs`) as escaped code would
//! make them. Another group's worker, the daemon's memory, the data
//! directory and another group's grants stay out of reach, as root (a uid
//! per group, Landlock) and as the packaged non-root user (one uid for
//! all, Landlock); a forbidden call kills the worker.
//!
//! What broke: a worker of group `ga` opened `/proc/<gb's worker>/mem`
//! read-write and wrote into it; under the packaged non-root unit a worker
//! opened the daemon's module records for writing and `/proc/<daemon>/mem`.

use super::harness::*;
use super::inject::{Outcome, Tracee};
use nix::libc;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);
const NOBODY: u32 = 65534;
const EACCES: Outcome = Outcome::Returned(-(libc::EACCES as i64));

/// A service in `group` that sees `dir` (read-only) at /data.
fn service(group: &str, dir: &Path) -> String {
    format!(
        "kind = \"service\"\ngroup = \"{group}\"\n[restart]\nbackoff_initial = \"100ms\"\n\
         [[capabilities.dirs]]\nhost = \"{}\"\nguest = \"/data\"\n",
        dir.display()
    )
}

/// Two groups, each with a granted directory holding a file anyone may
/// read (so only the walls can keep the other group out).
fn two_groups(daemon: &Daemon) -> [(u32, PathBuf); 2] {
    std::fs::set_permissions(daemon.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    ["ga", "gb"].map(|group| {
        let dir = daemon.dir.path().join(format!("{group}-data"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("secret.txt"), format!("{group}'s data")).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let id = format!("{group}_ticker");
        daemon
            .install(
                "ticker",
                Some(&format!("name = \"{id}\"\nversion = \"1.0.0\"\n")),
                &service(group, &dir),
            )
            .expect_code(0);
        let status = daemon.wait_for(&id, WAIT, "hosted by a worker", |s| {
            state_name(s) == "running" && s["worker_pid"].is_u64()
        });
        (status["worker_pid"].as_u64().unwrap() as u32, dir)
    })
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// What every setup must hold, from inside `ga`'s worker.
fn walls_hold(daemon: &Daemon, ga: &mut Tracee, gb_pid: u32, ga_dir: &Path, gb_dir: &Path) {
    // The injection works: its own grant opens.
    let own = ga.open(path(&ga_dir.join("secret.txt")), libc::O_RDONLY);
    assert!(matches!(own, Outcome::Returned(fd) if fd >= 0), "own grant: {own:?}");
    let daemon_pid = daemon.pid();
    let data = daemon.data_dir();
    let records = data.join("modules");
    let attempts: [(&str, String, libc::c_int); 6] = [
        (
            "another group's worker's memory",
            format!("/proc/{gb_pid}/mem"),
            libc::O_RDWR,
        ),
        ("the daemon's memory", format!("/proc/{daemon_pid}/mem"), libc::O_RDWR),
        (
            "another group's grant",
            path(&gb_dir.join("secret.txt")).to_owned(),
            libc::O_RDONLY,
        ),
        (
            "the data directory",
            path(&data).to_owned(),
            libc::O_RDONLY | libc::O_DIRECTORY,
        ),
        (
            "the module records",
            path(&records).to_owned(),
            libc::O_RDONLY | libc::O_DIRECTORY,
        ),
        (
            "a file beside its grant",
            path(daemon.dir.path()).to_owned(),
            libc::O_RDONLY | libc::O_DIRECTORY,
        ),
    ];
    for (what, target, flags) in attempts {
        assert_eq!(
            ga.open(&target, flags),
            EACCES,
            "{what} ({target}) must be out of reach"
        );
    }
    assert_eq!(
        ga.open(path(&ga_dir.join("planted.txt")), libc::O_WRONLY | libc::O_CREAT),
        EACCES,
        "a read-only grant takes no new file"
    );
    assert!(!ga_dir.join("planted.txt").exists());
}

/// A forbidden call (a socket) kills the worker at once; its module is
/// restarted in a new worker.
fn forbidden_call_kills(daemon: &Daemon, mut ga: Tracee, ga_pid: u32) {
    let outcome = ga.syscall(
        libc::SYS_socket,
        [libc::AF_INET as u64, libc::SOCK_STREAM as u64, 0, 0, 0, 0],
    );
    let Outcome::Killed(signal, after) = outcome else {
        panic!("socket() in a worker returned {outcome:?} instead of killing it");
    };
    assert!(signal == libc::SIGSYS || signal == 0, "killed by signal {signal}");
    eprintln!("escape attempt to worker death: {after:?}");
    daemon.wait_for("ga_ticker", WAIT, "running in a new worker", |s| {
        state_name(s) == "running" && s["worker_pid"].as_u64().is_some_and(|p| p as u32 != ga_pid)
    });
}

fn uid_of(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix("Uid:")
                .map(|u| u.split_whitespace().next().unwrap().to_owned())
        })
        .unwrap()
}

#[test]
fn an_escaped_worker_of_a_root_daemon_reaches_nothing_outside_its_grants() {
    let daemon = Daemon::start();
    let [(ga_pid, ga_dir), (gb_pid, gb_dir)] = two_groups(&daemon);
    let (ga_uid, gb_uid) = (uid_of(ga_pid), uid_of(gb_pid));
    assert_ne!(ga_uid, gb_uid, "two groups share a uid");
    assert!(
        ga_uid.parse::<u32>().unwrap() >= 1879048192,
        "uid {ga_uid} is outside workers.uids"
    );
    let mut ga = Tracee::seize(ga_pid);
    let uid = ga.syscall(libc::SYS_getuid, [0; 6]);
    assert_eq!(uid, Outcome::Returned(ga_uid.parse().unwrap()));
    walls_hold(&daemon, &mut ga, gb_pid, &ga_dir, &gb_dir);
    forbidden_call_kills(&daemon, ga, ga_pid);
    // The uid a group got is kept for the next start.
    let again = daemon.wait_for("ga_ticker", WAIT, "hosted", |s| s["worker_pid"].is_u64());
    assert_eq!(uid_of(again["worker_pid"].as_u64().unwrap() as u32), ga_uid);
}

#[test]
fn an_escaped_worker_of_the_packaged_non_root_daemon_reaches_nothing_outside_its_grants() {
    let daemon = Daemon::start_as_user(NOBODY);
    let [(ga_pid, ga_dir), (gb_pid, gb_dir)] = two_groups(&daemon);
    // No uid of its own here: the walls alone keep the groups apart.
    assert_eq!(
        (uid_of(ga_pid), uid_of(gb_pid)),
        (NOBODY.to_string(), NOBODY.to_string())
    );
    let mut ga = Tracee::seize(ga_pid);
    walls_hold(&daemon, &mut ga, gb_pid, &ga_dir, &gb_dir);
    forbidden_call_kills(&daemon, ga, ga_pid);
}
