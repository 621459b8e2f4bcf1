//! `cargo bench --bench bombs`: the daemon under hostile guests.
//!
//! For each bomb of issue 13, run as a trusted module in the daemon's own
//! process (the worst place for it): the daemon's peak resident memory and
//! open descriptors while it goes off, the slowest `status` round trip
//! meanwhile (goal ≤ 100 ms; the control plane runs on its own thread), and
//! how the bomb ended. Then the time from a worker's escape attempt (a
//! forbidden system call injected with ptrace, as root) to its death.

// A bench that cannot set up should stop loudly, not report a figure.
#![allow(clippy::expect_used, clippy::unwrap_used)]

#[cfg(target_arch = "x86_64")]
#[path = "../tests/all/daemon/inject.rs"]
#[allow(dead_code, reason = "the tests use all of it, this bench one call")]
mod inject;
mod support;

use arcella_core::client::Client;
use arcella_core::protocol::{ModuleState, Request, Response};
use std::path::Path;
use std::time::{Duration, Instant};
use support::spawn_daemon;

const GOAL_STATUS_MS: f64 = 100.0;

struct Bomb {
    guest: &'static str,
    what: &'static str,
    /// `[[capabilities.dirs]]` of a read-write grant at DIR, if it needs one.
    grant: bool,
}

const BOMBS: &[Bomb] = &[
    Bomb {
        guest: "memory_bomb_p1",
        what: "memory, no declared limit",
        grant: false,
    },
    Bomb {
        guest: "table_bomb",
        what: "tables of funcrefs",
        grant: false,
    },
    Bomb {
        guest: "fd_bomb",
        what: "open files",
        grant: true,
    },
    Bomb {
        guest: "infinite_loop",
        what: "a spin without fuel (10 s)",
        grant: false,
    },
];

fn main() {
    println!(
        "bombs in the daemon's process (goal: slowest status <= {GOAL_STATUS_MS} ms; the bomb ends naming its limit)"
    );
    for bomb in BOMBS {
        run(bomb);
    }
    #[cfg(target_arch = "x86_64")]
    escape_to_death();
}

fn deployment(bomb: &Bomb, dir: &Path) -> String {
    let mut text =
        "kind = \"service\"\nisolation = \"main\"\ntrusted = true\n[restart]\npolicy = \"never\"\n".to_owned();
    if bomb.grant {
        text += &format!(
            "[[capabilities.dirs]]\nhost = \"{}\"\nguest = \"/data\"\nmode = \"rw\"\n",
            dir.display()
        );
    }
    text
}

fn install(client: &mut Client, guest: &str, id: &str, deployment: &str) {
    let artifact = std::fs::read(arcella_test_programs::artifact(guest, "native")).expect("artifact");
    support::install(client, &artifact, id, deployment);
}

fn state(client: &mut Client, id: &str) -> ModuleState {
    match client.call(Request::Status { module: id.into() }).expect("status") {
        Response::Status(status) => status.summary.state,
        other => panic!("status answered {other:?}"),
    }
}

fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

fn run(bomb: &Bomb) {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("arcella.sock");
    let mut daemon = spawn_daemon(dir.path(), &socket);
    let pid = daemon.id();
    let grant = dir.path().join("grant");
    std::fs::create_dir(&grant).unwrap();
    let mut client = Client::connect(&socket, "bench").expect("connect");
    let (rss_before, fds_before) = (arcella_core::sys::process::resident_bytes(pid).unwrap_or(0), fds(pid));
    install(&mut client, bomb.guest, "bomb", &deployment(bomb, &grant));
    let began = Instant::now();
    let (mut peak_rss, mut peak_fds, mut slowest) = (0, 0, Duration::ZERO);
    let ended = loop {
        let asked = Instant::now();
        let now = state(&mut client, "bomb");
        slowest = slowest.max(asked.elapsed());
        peak_rss = peak_rss.max(arcella_core::sys::process::resident_bytes(pid).unwrap_or(0));
        peak_fds = peak_fds.max(fds(pid));
        match now {
            ModuleState::Running | ModuleState::Starting if began.elapsed() < Duration::from_secs(10) => {}
            ModuleState::Running | ModuleState::Starting => {
                break "still running after 10 s (the daemon kept serving)".to_owned();
            }
            ModuleState::Failed { reason } => break reason,
            other => break format!("{other:?}"),
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let slowest_ms = slowest.as_secs_f64() * 1e3;
    let verdict = if slowest_ms <= GOAL_STATUS_MS {
        "meets"
    } else {
        "MISSES"
    };
    println!("  {}:", bomb.what);
    println!(
        "    daemon RSS {} -> peak {} KiB, fds {fds_before} -> peak {peak_fds}; slowest status {slowest_ms:.2} ms ({verdict} the goal)",
        rss_before / 1024,
        peak_rss / 1024
    );
    println!("    ended: {}", ended.lines().next().unwrap_or_default());
    let _ = daemon.kill();
    let _ = daemon.wait();
}

/// A worker module's worker, seized and made to call `socket`.
#[cfg(target_arch = "x86_64")]
fn escape_to_death() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("arcella.sock");
    let mut daemon = spawn_daemon(dir.path(), &socket);
    let mut client = Client::connect(&socket, "bench").expect("connect");
    install(
        &mut client,
        "ticker",
        "victim",
        "kind = \"service\"\ngroup = \"g\"\n[restart]\nbackoff_initial = \"100ms\"\nmax_restarts = 50\n",
    );
    let mut samples = Vec::new();
    for _ in 0..20 {
        let deadline = Instant::now() + Duration::from_secs(10);
        let worker = loop {
            let asked = Request::Status {
                module: "victim".into(),
            };
            let Response::Status(status) = client.call(asked).expect("status") else {
                panic!("status answered oddly");
            };
            if let Some(host) = &status.worker {
                break host.pid;
            }
            assert!(Instant::now() < deadline, "no worker: {status:?}");
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut tracee = inject::Tracee::seize(worker);
        let args = [nix::libc::AF_INET as u64, nix::libc::SOCK_STREAM as u64, 0, 0, 0, 0];
        match tracee.syscall(nix::libc::SYS_socket, args) {
            inject::Outcome::Killed(_, after) => samples.push(after),
            other => panic!("socket() in a worker was not fatal: {other:?}"),
        }
        // A new worker at once, not after the crash backoff.
        std::thread::sleep(Duration::from_millis(50));
        client
            .call(Request::Restart {
                module: "victim".into(),
            })
            .expect("restart");
    }
    let p50 = support::percentile(&mut samples, 0.5) / 1e3;
    let max = support::percentile(&mut samples, 1.0) / 1e3;
    println!(
        "escape attempt (socket() injected into a worker) to the worker's death: p50 {p50:.2} ms, max {max:.2} ms ({} tries)",
        samples.len()
    );
    let _ = daemon.kill();
    let _ = daemon.wait();
}
