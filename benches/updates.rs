//! `cargo bench --bench updates`: replacing a running service, through the
//! daemon's socket, with a restart of the same service as the baseline.
//!
//! - start-first update: request → the new version's first output line
//!   (the old one keeps running until then: no gap by construction);
//! - stop-first update: the same, plus the gap in which neither version
//!   serves (the daemon's note that the old one stopped to the new
//!   version's first line, by the daemon's millisecond timestamps);
//! - rollback by hand: request → the previous version's first output;
//! - automatic rollback: request of an update to a version that traps at
//!   once → the old version's first output again;
//! - baseline: `restart` → first output.
//!
//! The two versions print different first lines (ticker: "tick", graceful:
//! "working"), so each figure waits for the right one.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod support;
use arcella_core::client::Client;
use arcella_core::protocol::{Event, InstallSpec, LogStream, Request};
use std::process::Command;
use std::time::{Duration, Instant};
use support::{percentile, spawn_daemon};

const ROUNDS: usize = 20;

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("arcella.sock");
    let mut daemon = spawn_daemon(dir.path(), &socket);
    let mut client = Client::connect(&socket, "bench-updates").expect("connect");
    let ticker = std::fs::read(arcella_test_programs::artifact("ticker", "native")).expect("ticker");
    let graceful = std::fs::read(arcella_test_programs::artifact("graceful_p1", "native")).expect("graceful");
    let trap = std::fs::read(arcella_test_programs::artifact("unreachable", "native")).expect("unreachable");
    let start_first = "kind = \"service\"\nisolation = \"main\"\ntrusted = true\n[update]\nhealth_window = \"2s\"\n";
    let stop_first = "kind = \"service\"\nisolation = \"main\"\ntrusted = true\n[update]\nstrategy = \"stop-first\"\n\
                      health_window = \"0s\"\n";
    let spec = |client: &mut Client, bytes: &[u8], version: usize, deployment: &str| InstallSpec {
        upload: client.upload(bytes).expect("upload"),
        component_toml: Some(format!("name = \"svc\"\nversion = \"{version}.0.0\"\n")),
        deployment_toml: Some(deployment.to_owned()),
    };
    let first = spec(&mut client, &ticker, 0, start_first);
    client.call(Request::Install(first)).expect("install");
    let mut events = Client::connect(&socket, "bench-events").expect("connect");
    events
        .call(Request::Follow {
            module: Some("svc".into()),
        })
        .expect("follow");
    wait_line(&mut events, "tick", Instant::now());

    println!("arcella update bench ({ROUNDS} rounds each)\n");
    let mut restart = Vec::new();
    for _ in 0..ROUNDS {
        let began = Instant::now();
        client.call(Request::Restart { module: "svc".into() }).expect("restart");
        restart.push(wait_line(&mut events, "tick", began).0);
    }

    // Alternate ticker and graceful so the awaited first line is the new
    // one; `lines` is (current version's first line, previous version's).
    let mut lines = ("tick", "");
    let mut version = 1;
    let mut update =
        |client: &mut Client, events: &mut Client, lines: &mut (&'static str, &'static str), deployment: &str| {
            let (bytes, line) = if lines.0 == "tick" {
                (&graceful, "working")
            } else {
                (&ticker, "tick")
            };
            let spec = spec(client, bytes, version, deployment);
            version += 1;
            let began = Instant::now();
            client
                .call(Request::Update {
                    module: "svc".into(),
                    spec,
                })
                .expect("update");
            *lines = (line, lines.0);
            wait_line(events, line, began)
        };
    let mut start_first_times = Vec::new();
    for _ in 0..ROUNDS {
        start_first_times.push(update(&mut client, &mut events, &mut lines, start_first).0);
    }
    let mut stop_first_times = Vec::new();
    let mut gaps = Vec::new();
    for _ in 0..ROUNDS {
        let (took, gap) = update(&mut client, &mut events, &mut lines, stop_first);
        stop_first_times.push(took);
        gaps.push(gap.expect("a stop-first swap stops first"));
    }
    let mut rollbacks = Vec::new();
    for _ in 0..ROUNDS {
        let began = Instant::now();
        client
            .call(Request::Rollback { module: "svc".into() })
            .expect("rollback");
        lines = (lines.1, lines.0);
        rollbacks.push(wait_line(&mut events, lines.0, began).0);
    }
    let mut automatic = Vec::new();
    for _ in 0..ROUNDS {
        let spec = spec(&mut client, &trap, 99, start_first);
        let began = Instant::now();
        client
            .call(Request::Update {
                module: "svc".into(),
                spec,
            })
            .expect("update");
        // Rolled back: the current version runs again from its start.
        automatic.push(wait_line(&mut events, lines.0, began).0);
    }

    let base = percentile(&mut restart, 0.5);
    println!(
        "restart -> first output (baseline):   p50 {base:>7.0} µs, p99 {:>7.0} µs",
        percentile(&mut restart, 0.99)
    );
    for (name, samples) in [
        ("start-first update -> new serving", &mut start_first_times),
        ("stop-first update -> new serving", &mut stop_first_times),
        ("rollback by hand -> previous serving", &mut rollbacks),
        ("failing update -> old serving again", &mut automatic),
    ] {
        let p50 = percentile(samples, 0.5);
        println!(
            "{name:<38} p50 {p50:>7.0} µs, p99 {:>7.0} µs ({:.2}x restart)",
            percentile(samples, 0.99),
            p50 / base
        );
    }
    println!(
        "gap with neither version running: start-first 0 (the old one stops after the new one runs); \
         stop-first p50 {:.0} µs, p99 {:.0} µs (daemon timestamps, 1 ms resolution)",
        percentile(&mut gaps, 0.5),
        percentile(&mut gaps, 0.99)
    );
    let _ = Command::new("kill").arg("-TERM").arg(daemon.id().to_string()).status();
    let _ = daemon.wait();
}

/// Waits for a stdout line starting with `prefix`, returning the time
/// since `began` and, if the old instance stopped on the way, the time
/// from the daemon's note that it stopped to that line, by the daemon's
/// own timestamps (milliseconds): the gap in which no version served.
fn wait_line(events: &mut Client, prefix: &str, began: Instant) -> (Duration, Option<Duration>) {
    let mut stopped_ms = None;
    loop {
        if let Event::Log(line) = events.next_event().expect("event") {
            if line.stream == LogStream::Stdout && line.text.starts_with(prefix) {
                let gap = stopped_ms.map(|at: u64| Duration::from_millis(line.at_ms.saturating_sub(at)));
                return (began.elapsed(), gap);
            }
            if line.stream == LogStream::Daemon && line.text.starts_with("stopped") && stopped_ms.is_none() {
                stopped_ms = Some(line.at_ms);
            }
        }
        assert!(
            began.elapsed() < Duration::from_secs(10),
            "no `{prefix}` line within 10s"
        );
    }
}
