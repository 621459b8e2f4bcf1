//! `cargo bench --bench typed_calls`: what a typed call between modules
//! costs its caller (the `thermo_consumer` guest's `bench` mode: N calls
//! of `count() -> u64`, each timed inside the guest), for every pairing of
//! in-process and worker modules, beside a direct Rust function call and
//! a request over the local management socket (`arcella info`'s round
//! trip, the cheapest way two processes talk through the daemon today).
//! Also the memory one idle provider instance costs its worker.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod support;

use arcella_core::client::Client;
use arcella_core::protocol::{ModuleStatus, Request, Response};
use arcella_test_programs::artifact;
use std::time::{Duration, Instant};

const N: usize = 3000;

fn provider(main: bool) -> String {
    let place = if main {
        "isolation = \"main\"\ntrusted = true\n"
    } else {
        "isolation = \"worker\"\ngroup = \"providers\"\n"
    };
    format!("kind = \"provider\"\n{place}")
}

/// A provider in worker group `pool` (its pool grows on demand; idle, it
/// holds one instance).
const POOLED: &str = "kind = \"provider\"\nisolation = \"worker\"\ngroup = \"pool\"\n";

/// The worker's resident memory once it has settled, in KiB.
fn worker_kib(client: &mut Client, id: &str) -> u64 {
    std::thread::sleep(Duration::from_millis(500));
    status(client, id)
        .worker
        .as_ref()
        .map_or(0, |w| w.resident_bytes / 1024)
}

fn consumer(main: bool, provider: &str) -> String {
    let place = if main {
        "isolation = \"main\"\ntrusted = true\n"
    } else {
        "isolation = \"worker\"\ngroup = \"consumers\"\n"
    };
    format!(
        "kind = \"command\"\n{place}[restart]\npolicy = \"never\"\n[capabilities]\nargs = [\"bench\", \"{N}\"]\n\
         [imports]\n\"acme:thermo/sensor\" = \"{provider}\"\n"
    )
}

fn status(client: &mut Client, id: &str) -> ModuleStatus {
    match client.call(Request::Status { module: id.to_owned() }).expect("status") {
        Response::Status(s) => *s,
        other => panic!("{other:?}"),
    }
}

/// The consumer's `bench:` line: (p50 µs, p99 µs).
fn run_consumer(client: &mut Client, id: &str, deployment: &str) -> (f64, f64) {
    support::install(
        client,
        &std::fs::read(artifact("thermo_consumer", "native")).unwrap(),
        id,
        deployment,
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let logs = match client
            .call(Request::Logs {
                module: id.to_owned(),
                tail: 0,
            })
            .expect("logs")
        {
            Response::Logs(lines) => lines,
            other => panic!("{other:?}"),
        };
        if let Some(line) = logs.iter().find_map(|l| l.text.strip_prefix("bench: ")) {
            let field = |name: &str| -> f64 {
                let value = line.split_whitespace().find_map(|w| w.strip_prefix(name)).unwrap();
                value.parse::<f64>().unwrap() / 1000.0
            };
            return (field("p50_ns="), field("p99_ns="));
        }
        assert!(Instant::now() < deadline, "{id} printed no bench line: {logs:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[inline(never)]
fn count(n: &mut u64) -> u64 {
    *n += 1;
    *n
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("arcella.sock");
    let mut daemon = support::spawn_daemon(dir.path(), &socket);
    let mut client = Client::connect(&socket, "typed-calls bench").expect("connect");
    let provider_code = std::fs::read(artifact("thermo_provider", "native")).unwrap();
    support::install(&mut client, &provider_code, "in-daemon", &provider(true));
    support::install(&mut client, &provider_code, "in-worker", &provider(false));
    std::thread::sleep(Duration::from_millis(500));

    println!("typed call latency, {N} calls of count() -> u64 each, timed in the caller (µs)");
    println!("{:<36} {:>9} {:>9}", "pairing", "p50", "p99");
    let mut direct: Vec<Duration> = Vec::with_capacity(N);
    let mut n = 0;
    for _ in 0..N {
        let began = Instant::now();
        std::hint::black_box(count(std::hint::black_box(&mut n)));
        direct.push(began.elapsed());
    }
    println!(
        "{:<36} {:>9.3} {:>9.3}",
        "direct Rust call (baseline)",
        support::percentile(&mut direct, 0.5),
        support::percentile(&mut direct, 0.99)
    );
    let mut socket_calls: Vec<Duration> = Vec::with_capacity(N);
    for _ in 0..N {
        let began = Instant::now();
        client.call(Request::Info).expect("info");
        socket_calls.push(began.elapsed());
    }
    println!(
        "{:<36} {:>9.1} {:>9.1}",
        "local socket request (baseline)",
        support::percentile(&mut socket_calls, 0.5),
        support::percentile(&mut socket_calls, 0.99)
    );
    for (label, id, main, provider) in [
        ("in-process -> in-process", "c-main-main", true, "in-daemon"),
        ("in-process -> worker", "c-main-worker", true, "in-worker"),
        ("worker -> in-process", "c-worker-main", false, "in-daemon"),
        ("worker -> worker", "c-worker-worker", false, "in-worker"),
    ] {
        let (p50, p99) = run_consumer(&mut client, id, &consumer(main, provider));
        println!("{label:<36} {p50:>9.1} {p99:>9.1}");
    }
    // Memory per provider instance: one worker holding 1, then 8 idle
    // providers of the same artifact (one instance each).
    support::install(&mut client, &provider_code, "pool-0", POOLED);
    let one = worker_kib(&mut client, "pool-0");
    for i in 1..8 {
        support::install(&mut client, &provider_code, &format!("pool-{i}"), POOLED);
    }
    let eight = worker_kib(&mut client, "pool-0");
    println!("one worker with 1 idle provider instance: {one} KiB resident; with 8: {eight} KiB");
    println!(
        "memory per further provider instance: {} KiB (no goal set; compare an idle trusted service)",
        eight.saturating_sub(one) / 7
    );
    let _ = daemon.kill();
    let _ = daemon.wait();
}
