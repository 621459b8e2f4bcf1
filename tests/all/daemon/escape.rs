//! A worker taken over by its guest, tested the way it was broken: system
//! calls injected into the worker (see `inject.rs`) as escaped code would
//! make them. Another group's worker, the daemon's memory, the data
//! directory and another group's grants stay out of reach, as root (a uid
//! per group) and as the packaged non-root user (one uid for all), each
//! with Landlock walls and with the mount-namespace walls that kernels
//! without Landlock get (`filesystem_walls = "mount-namespace"`); a
//! forbidden call kills the worker. Workers greeted by hand show the
//! mount namespace's whole mount table, and the words of a worker whose
//! kernel refuses the namespace.
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
const MOUNT_NAMESPACE: &str = "[workers]\nfilesystem_walls = \"mount-namespace\"\n";

/// What walls the workers have: the errno of what they keep out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Walled {
    /// Paths outside are there but refused: `EACCES`.
    Landlock,
    /// Paths outside do not exist (`ENOENT`); a read-only grant is a
    /// read-only mount (`EROFS`).
    MountNamespace,
}

impl Walled {
    fn outside(self) -> Outcome {
        errno(match self {
            Self::Landlock => libc::EACCES,
            Self::MountNamespace => libc::ENOENT,
        })
    }

    fn read_only(self) -> Outcome {
        errno(match self {
            Self::Landlock => libc::EACCES,
            Self::MountNamespace => libc::EROFS,
        })
    }
}

fn errno(errno: libc::c_int) -> Outcome {
    Outcome::Returned(-(errno as i64))
}

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
fn walls_hold(daemon: &Daemon, ga: &mut Tracee, gb_pid: u32, ga_dir: &Path, gb_dir: &Path, walled: Walled) {
    // The injection works: its own grant opens.
    let own = ga.open(path(&ga_dir.join("secret.txt")), libc::O_RDONLY);
    assert!(matches!(own, Outcome::Returned(fd) if fd >= 0), "own grant: {own:?}");
    let daemon_pid = daemon.pid();
    let data = daemon.data_dir();
    let records = data.join("modules");
    let mut attempts: Vec<(&str, String, libc::c_int)> = vec![
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
            path(&daemon.dir.path().join("arcella.toml")).to_owned(),
            libc::O_RDONLY,
        ),
    ];
    // Both groups run the ticker: its code file, in the store and as the
    // other group's link (`artifacts/groups/gb/`), stays out of reach; only
    // its own group's link is readable, through its descriptor.
    let store = data.join("artifacts");
    let code = std::fs::read_dir(&store)
        .unwrap()
        .flatten()
        .map(|entry| entry.file_name())
        .find(|name| name.to_string_lossy().ends_with(".code"))
        .expect("the ticker's code file");
    let gb_link = store.join("groups/gb").join(&code);
    assert!(gb_link.exists(), "gb's worker got its code through its group's link");
    attempts.push((
        "the store's code file",
        path(&store.join(&code)).to_owned(),
        libc::O_RDONLY,
    ));
    attempts.push(("another group's code link", path(&gb_link).to_owned(), libc::O_RDONLY));
    if walled == Walled::Landlock {
        // In a mount namespace the directory is there, on the tmpfs the
        // grants are mounted in, holding nothing but them.
        attempts.push((
            "the directory around its grant",
            path(daemon.dir.path()).to_owned(),
            libc::O_RDONLY | libc::O_DIRECTORY,
        ));
    }
    for (what, target, flags) in attempts {
        assert_eq!(
            ga.open(&target, flags),
            walled.outside(),
            "{what} ({target}) must be out of reach"
        );
    }
    assert_eq!(
        ga.open(path(&ga_dir.join("planted.txt")), libc::O_WRONLY | libc::O_CREAT),
        walled.read_only(),
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
    walls_hold(&daemon, &mut ga, gb_pid, &ga_dir, &gb_dir, Walled::Landlock);
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
    walls_hold(&daemon, &mut ga, gb_pid, &ga_dir, &gb_dir, Walled::Landlock);
    forbidden_call_kills(&daemon, ga, ga_pid);
}

/// The worker's own namespace (`mnt` or `user`), as `/proc` names it.
fn namespace(pid: u32, kind: &str) -> PathBuf {
    std::fs::read_link(format!("/proc/{pid}/ns/{kind}")).unwrap()
}

/// The worker still reports its memory: the `statm` it opened before its
/// walls went up still reads (`/proc` is not in its view any more).
fn statm_still_reads(ga: &mut Tracee, pid: u32) {
    let statm = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| e.ok())
        .find(|e| std::fs::read_link(e.path()).is_ok_and(|l| l.ends_with("statm")))
        .expect("the worker holds its statm open")
        .file_name();
    let fd: u64 = statm.to_str().unwrap().parse().unwrap();
    let buf = ga.put_str(&" ".repeat(127));
    let read = ga.syscall(libc::SYS_pread64, [fd, buf, 128, 0, 0, 0]);
    assert!(matches!(read, Outcome::Returned(n) if n > 0), "pread(statm): {read:?}");
}

/// `ga`'s guests still read their grant (a module started next to the
/// ticker, in the same worker) and the ticker keeps ticking.
fn own_grant_serves_its_guests(daemon: &Daemon, ga_dir: &Path, ga_pid: u32) {
    let ticks = || daemon.cli(["logs", "ga_ticker"]).stdout.matches("tick").count();
    let before = ticks();
    std::fs::write(ga_dir.join("in.txt"), "ga's input\n").unwrap();
    let deployment = format!(
        "group = \"ga\"\n[restart]\npolicy = \"never\"\n[capabilities]\nargs = [\"write-read\"]\n\
         [[capabilities.dirs]]\nhost = \"{}\"\nguest = \"/data\"\n",
        ga_dir.display()
    );
    daemon
        .install(
            "files_p1",
            Some("name = \"ga_files\"\nversion = \"1.0.0\"\n"),
            &deployment,
        )
        .expect_code(0);
    let status = daemon.wait_for("ga_files", WAIT, "exited", |s| state_name(s) == "exited");
    let logs = daemon.cli(["logs", "ga_files"]).stdout;
    // 4: read, then the write refused (a read-only grant).
    assert_eq!(status["exit_code"], 4, "{logs}");
    assert!(logs.contains("read: ga's input"), "{logs}");
    assert_eq!(
        daemon.log().matches("worker `ga` started").count(),
        1,
        "it ran in ga's walled worker:\n{}",
        daemon.log()
    );
    daemon.wait_for("ga_ticker", WAIT, "still ticking in the same worker", |s| {
        state_name(s) == "running" && s["worker_pid"].as_u64() == Some(u64::from(ga_pid))
    });
    let deadline = std::time::Instant::now() + WAIT;
    while ticks() <= before {
        assert!(std::time::Instant::now() < deadline, "the ticker stopped ticking");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Both groups' workers in namespaces of their own, then what the root
/// and the packaged setups share.
fn mount_namespace_walls_hold(daemon: &Daemon) {
    let [(ga_pid, ga_dir), (gb_pid, gb_dir)] = two_groups(daemon);
    let ours = std::process::id();
    for pid in [ga_pid, gb_pid] {
        for kind in ["mnt", "user"] {
            assert_ne!(namespace(pid, kind), namespace(ours, kind), "worker {pid}: {kind}");
        }
    }
    assert_ne!(namespace(ga_pid, "mnt"), namespace(gb_pid, "mnt"));
    let mut ga = Tracee::seize(ga_pid);
    walls_hold(daemon, &mut ga, gb_pid, &ga_dir, &gb_dir, Walled::MountNamespace);
    statm_still_reads(&mut ga, ga_pid);
    drop(ga);
    own_grant_serves_its_guests(daemon, &ga_dir, ga_pid);
    forbidden_call_kills(daemon, Tracee::seize(ga_pid), ga_pid);
}

#[test]
fn an_escaped_worker_of_a_root_daemon_in_a_mount_namespace_reaches_nothing_outside_its_grants() {
    let daemon = Daemon::start_with_config(MOUNT_NAMESPACE);
    mount_namespace_walls_hold(&daemon);
}

#[test]
fn an_escaped_worker_of_the_packaged_non_root_daemon_in_a_mount_namespace_reaches_nothing_outside_its_grants() {
    let daemon = Daemon::start_as_user_with_config(NOBODY, MOUNT_NAMESPACE);
    mount_namespace_walls_hold(&daemon);
}

/// A real `arcella-worker` started by `shell` (which ends in `exec "$0"
/// --group g`) under util-linux `unshare ARGS`, greeted by hand with
/// `walls` (seccomp off): its `Ready` report on the walls, and the process.
fn hand_greeted_worker(
    unshare: &[&str],
    shell: &str,
    walls: arcella_core::protocol::worker::Walls,
) -> (String, std::process::Child, arcella_core::sys::seqpacket::SeqPacket) {
    use arcella_core::protocol::worker::{self, FromWorker, ToWorker};
    use arcella_core::sys::seqpacket::SeqPacket;
    use std::os::fd::{AsRawFd, OwnedFd};
    use std::os::unix::process::CommandExt;

    let (ours, theirs) = SeqPacket::pair().unwrap();
    let theirs: OwnedFd = theirs.into_owned_fd();
    let raw = theirs.as_raw_fd();
    let mut command = std::process::Command::new("unshare");
    command
        .args(unshare)
        .args(["sh", "-c", shell, env!("CARGO_BIN_EXE_arcella-worker")])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    // SAFETY: dup2 is async-signal-safe; `raw` stays open in the parent
    // until spawn returns. fd 3 is where the worker finds its link.
    unsafe {
        command.pre_exec(move || match libc::dup2(raw, 3) {
            -1 => Err(std::io::Error::last_os_error()),
            _ => Ok(()),
        });
    }
    let mut child = command.spawn().expect("util-linux unshare");
    drop(theirs);
    let profile = arcella_core::engine::EngineProfile::default();
    let hello = ToWorker::Hello {
        version: worker::WORKER_PROTOCOL_VERSION,
        group: "g".into(),
        fingerprint: arcella_core::fingerprint::EngineFingerprint::of(&profile).to_string(),
        profile,
        seccomp: false,
        walls,
        http_roots: Vec::new(),
    };
    ours.send(&worker::encode(&hello).unwrap(), None).unwrap();
    let mut buf = worker::receive_buffer();
    let (len, _) = ours.recv(&mut buf).unwrap();
    let reply: FromWorker = match worker::decode(&buf[..len]) {
        Ok(reply) => reply,
        Err(e) => {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("{e}: {}", String::from_utf8_lossy(&out.stderr))
        }
    };
    let FromWorker::Ready { walls, .. } = reply else {
        panic!("{reply:?}");
    };
    (walls, child, ours)
}

fn mount_namespace_walls(dirs: &[(&Path, bool)]) -> arcella_core::protocol::worker::Walls {
    use arcella_core::protocol::worker::{FilesystemWalls, WallDir, Walls};
    Walls {
        dirs: dirs
            .iter()
            .map(|&(path, writable)| WallDir {
                path: path.to_owned(),
                writable,
            })
            .collect(),
        network: false,
        kind: FilesystemWalls::MountNamespace,
    }
}

/// Where the kernel refuses the namespace, the worker says so in words
/// (the daemon logs its report once): inside a user namespace whose
/// `max_user_namespaces` is 0 (which binds that namespace only, not the
/// machine).
#[test]
fn a_worker_refused_a_mount_namespace_says_so() {
    let (walls, mut child, link) = hand_greeted_worker(
        &["--user", "--map-root-user"],
        "echo 0 > /proc/sys/user/max_user_namespaces && exec \"$0\" --group g",
        mount_namespace_walls(&[]),
    );
    assert_eq!(
        walls,
        "no filesystem walls: workers.filesystem_walls = \"mount-namespace\" and a mount namespace was refused \
         (unshare(CLONE_NEWUSER | CLONE_NEWNS): ENOSPC: No space left on device); the worker relies on its uid, \
         being non-dumpable and seccomp"
    );
    drop(link);
    assert!(child.wait().unwrap().success());
}

/// The worker's whole mount table: a read-only root, its grants and
/// nothing else; a read-only grant read-only down to what is mounted
/// beneath it (here a tmpfs, mounted in a mount namespace of the test's
/// own so the machine's table is not touched); none set-uid, devices or
/// exec.
#[test]
fn a_mount_namespace_holds_the_grants_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let (ro, rw, missing) = (dir.path().join("ro"), dir.path().join("rw"), dir.path().join("gone"));
    std::fs::create_dir_all(ro.join("sub")).unwrap();
    std::fs::create_dir_all(&rw).unwrap();
    let shell = format!(
        "mount -t tmpfs beneath {} && exec \"$0\" --group g",
        path(&ro.join("sub"))
    );
    let (walls, mut child, link) = hand_greeted_worker(
        &["--mount", "--propagation", "private"],
        &shell,
        mount_namespace_walls(&[(&ro, false), (&rw, true), (&missing, true)]),
    );
    assert_eq!(
        walls,
        format!(
            "mount-namespace walls up: 2 granted director(ies) (1 missing: {}), nothing else of the file system",
            missing.display()
        )
    );
    let table = std::fs::read_to_string(format!("/proc/{}/mountinfo", child.id())).unwrap();
    let mounts: Vec<(String, String)> = table
        .lines()
        .map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            (fields[4].to_owned(), fields[5].to_owned())
        })
        .collect();
    let points: Vec<&str> = mounts.iter().map(|(point, _)| point.as_str()).collect();
    let sub = ro.join("sub");
    assert_eq!(points, ["/", path(&ro), path(&sub), path(&rw)], "{table}");
    for (point, options) in &mounts {
        let options: Vec<&str> = options.split(',').collect();
        let writable = *point == path(&rw);
        assert_eq!(options.contains(&"rw"), writable, "{point}: {options:?}");
        assert_eq!(options.contains(&"ro"), !writable, "{point}: {options:?}");
        for flag in ["nosuid", "nodev", "noexec"] {
            assert!(options.contains(&flag), "{point}: {options:?}");
        }
    }
    drop(link);
    assert!(child.wait().unwrap().success());
}
