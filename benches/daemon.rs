//! `cargo bench --bench daemon`: the daemon over its socket, with
//! baselines measured in the same run.
//!
//! - resident memory and threads: idle, then with 11 idle trusted services
//!   (per-service cost = what the last 10 add / 10: the first pages in the
//!   code every install and start runs once);
//! - `start` → first guest output (at a follower on its own connection)
//!   and → the reply, p50/p99, against `arcella run` of the
//!   same artifact (process spawn included) as the one-shot baseline; and
//!   again with no CPU halted (`support::BusyCpus`: on a VM, waking a
//!   halted vCPU is most of the first figure);
//! - `status` round trip, p50/p99, against a bare Unix-socket echo of a
//!   frame of the same size (the transport's floor).

// A bench that cannot set up should stop loudly, not report a figure.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod support;
use arcella_core::client::Client;
use arcella_core::protocol::{Event, LogStream, ModuleState, Request, Response};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{percentile, spawn_daemon};

const SERVICES: usize = 10;

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("arcella.sock");
    let mut daemon = spawn_daemon(dir.path(), &socket);
    println!("daemon: {}", support::daemon_binary().display());
    let pid = daemon.id();
    std::thread::sleep(Duration::from_millis(500));
    let (idle_rss, idle_threads, _) = rss_threads_anon(pid);
    println!(
        "daemon, idle:                 RSS {:.1} MiB (goal ≤ 4 MiB), {idle_threads} threads",
        kib_to_mib(idle_rss)
    );

    let mut client = Client::connect(&socket, "bench").expect("connect");
    let artifact = std::fs::read(arcella_test_programs::artifact("ticker", "native")).expect("ticker artifact");
    let trusted = "kind = \"service\"\nisolation = \"main\"\ntrusted = true\n";
    // One service first, so the code an install and a start run once is
    // paged in before the baseline: what the ten add is theirs.
    support::install(&mut client, &artifact, "ticker-first", trusted);
    std::thread::sleep(Duration::from_secs(1));
    let (one_rss, _, one_anon) = rss_threads_anon(pid);
    for i in 0..SERVICES {
        support::install(&mut client, &artifact, &format!("ticker{i}"), trusted);
    }
    std::thread::sleep(Duration::from_secs(2));
    let (busy_rss, busy_threads, busy_anon) = rss_threads_anon(pid);
    println!(
        "daemon, {} idle services:     RSS {:.1} MiB, {busy_threads} threads; each further one {:.0} KiB resident, \
         {:.0} KiB of it anonymous (the rest: its code and memory image, file pages) (goal ≤ 128 KiB beyond its linear memory)",
        SERVICES + 1,
        kib_to_mib(busy_rss),
        busy_rss.saturating_sub(one_rss) as f64 / SERVICES as f64,
        busy_anon.saturating_sub(one_anon) as f64 / SERVICES as f64
    );

    let (mut starts, mut replies) = start_latencies(&socket, "ticker0", 100);
    let mut one_shot = run_latencies(40);
    report(
        "start -> first guest output (goal ≤ 250 µs p50)",
        &mut starts,
        "`arcella run` -> first output",
        &mut one_shot,
    );
    println!(
        "  start -> its reply (the desired state on disk): {}",
        p50_p99(&mut replies)
    );
    println!(
        "  the same, no CPU halted (lowest-priority busy loops): {} (goal ≤ 250 µs p50)",
        p50_p99(&mut first_outputs_no_halt(&socket, "ticker0", 100))
    );
    // A component (WASI 0.2, linked against every host interface), whose
    // first line is its first act.
    let component = std::fs::read(arcella_test_programs::artifact("graceful_p2", "native")).expect("graceful_p2");
    let trusted = "kind = \"service\"\nisolation = \"main\"\ntrusted = true\n";
    support::install(&mut client, &component, "component0", trusted);
    std::thread::sleep(Duration::from_millis(500));
    let (mut starts, _) = start_latencies(&socket, "component0", 100);
    println!("start -> first guest output, a component: {}", p50_p99(&mut starts));
    println!(
        "  the same, no CPU halted: {}",
        p50_p99(&mut first_outputs_no_halt(&socket, "component0", 100))
    );

    let mut status = (0..2000)
        .map(|_| {
            let began = Instant::now();
            client
                .call(Request::Status {
                    module: "ticker0".into(),
                })
                .expect("status");
            began.elapsed()
        })
        .collect::<Vec<_>>();
    let mut echo = echo_latencies(2000);
    report("status round trip", &mut status, "bare Unix-socket echo", &mut echo);

    let _ = Command::new("kill").arg("-TERM").arg(pid.to_string()).status();
    let _ = daemon.wait();
}

/// Stop `module`, then time Start until its first stdout line arrives at a
/// follower on a connection of its own (timed as it arrives, not after the
/// reply), and until the reply (sent once the desired state is on disk).
fn start_latencies(socket: &Path, module: &str, n: usize) -> (Vec<Duration>, Vec<Duration>) {
    let mut follower = Client::connect(socket, "bench-follow").expect("connect");
    follower
        .call(Request::Follow {
            module: Some(module.into()),
        })
        .expect("follow");
    let (arrived, arrivals) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        while let Ok(event) = follower.next_event() {
            if let Event::Log(line) = event
                && line.stream == LogStream::Stdout
                && arrived.send(Instant::now()).is_err()
            {
                return;
            }
        }
    });
    let mut client = Client::connect(socket, "bench-start").expect("connect");
    let mut outputs = Vec::with_capacity(n);
    let mut replies = Vec::with_capacity(n);
    for _ in 0..n {
        client.call(Request::Stop { module: module.into() }).expect("stop");
        // A service that hears the request may take a moment to finish;
        // a start waits for it, which is not what is measured here.
        while stopping(&mut client, module) {
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(20));
        while arrivals.try_recv().is_ok() {}
        let began = Instant::now();
        client.call(Request::Start { module: module.into() }).expect("start");
        replies.push(began.elapsed());
        let first = arrivals
            .recv_timeout(Duration::from_secs(5))
            .expect("the module's first line");
        outputs.push(first - began);
    }
    (outputs, replies)
}

/// [`start_latencies`] to the first output, with no CPU halted
/// (`support::BusyCpus`): on a VM, without the hypervisor waking a vCPU.
fn first_outputs_no_halt(socket: &Path, module: &str, n: usize) -> Vec<Duration> {
    let _busy = support::BusyCpus::start();
    start_latencies(socket, module, n).0
}

/// "p50 X µs, p99 Y µs" of `samples`.
fn p50_p99(samples: &mut [Duration]) -> String {
    format!(
        "p50 {:.0} µs, p99 {:.0} µs",
        percentile(samples, 0.5),
        percentile(samples, 0.99)
    )
}

/// Whether `module` is still finishing after a stop.
fn stopping(client: &mut Client, module: &str) -> bool {
    match client.call(Request::Status { module: module.into() }) {
        Ok(Response::Status(status)) => status.summary.state == ModuleState::Stopping,
        _ => false,
    }
}

/// `arcella run ticker.cwasm` until its first line of output.
fn run_latencies(n: usize) -> Vec<Duration> {
    let artifact = arcella_test_programs::artifact("ticker", "native");
    (0..n)
        .map(|_| {
            let began = Instant::now();
            let mut child = Command::new(support::daemon_binary())
                .arg("run")
                .arg(&artifact)
                .stdout(Stdio::piped())
                .spawn()
                .expect("arcella run");
            let mut first = [0u8; 5];
            child.stdout.take().unwrap().read_exact(&mut first).expect("tick");
            let elapsed = began.elapsed();
            let _ = child.kill();
            let _ = child.wait();
            elapsed
        })
        .collect()
}

/// Round trips of a status-sized frame through a Unix socket pair.
fn echo_latencies(n: usize) -> Vec<Duration> {
    let (mut a, mut b) = UnixStream::pair().unwrap();
    let echo = std::thread::spawn(move || {
        let mut buf = [0u8; 256];
        for _ in 0..n {
            b.read_exact(&mut buf[..20]).unwrap();
            b.write_all(&buf[..180]).unwrap();
        }
    });
    let request = [7u8; 20];
    let mut reply = [0u8; 180];
    let samples = (0..n)
        .map(|_| {
            let began = Instant::now();
            a.write_all(&request).unwrap();
            a.read_exact(&mut reply).unwrap();
            began.elapsed()
        })
        .collect();
    echo.join().unwrap();
    samples
}

/// `VmRSS` (KiB), `Threads`, and `RssAnon` (KiB: the process's own
/// memory, what is not a file's), from one read of `/proc/PID/status`.
fn rss_threads_anon(pid: u32) -> (u64, u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("Threads:"), field("RssAnon:"))
}

fn kib_to_mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn report(what: &str, ours: &mut [Duration], baseline_name: &str, baseline: &mut [Duration]) {
    let (o50, o99) = (percentile(ours, 0.5), percentile(ours, 0.99));
    let (b50, b99) = (percentile(baseline, 0.5), percentile(baseline, 0.99));
    println!("{what}: p50 {o50:.0} µs, p99 {o99:.0} µs");
    println!(
        "  baseline ({baseline_name}): p50 {b50:.0} µs, p99 {b99:.0} µs; ratio p50 {:.2}x",
        o50 / b50
    );
}
