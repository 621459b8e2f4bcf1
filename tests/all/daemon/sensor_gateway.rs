//! The README's example that does real work, as a user deploys it: the
//! sensor gateway built from examples/sensor-gateway by the test setup,
//! installed with the example's own manifests (only the sensor's port
//! changed to a live one), polling a real TCP sensor on loopback from a
//! walled worker, keeping state, reading config, logging at levels, and
//! refused the address it was not granted.

use super::harness::*;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/sensor-gateway");

/// A sensor answering every `READ` with `21.5`, on a port of its own.
fn sensor() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).is_ok() && line.trim() == "READ" {
                let _ = (&stream).write_all(b"21.5\n");
            }
        }
    });
    addr
}

fn count_in(logs: &str) -> u64 {
    logs.lines()
        .filter_map(|l| l.split("count=").nth(1))
        .filter_map(|n| n.trim().parse().ok())
        .max()
        .unwrap_or(0)
}

#[test]
fn the_sensor_gateway_polls_keeps_state_and_is_refused_what_it_was_not_granted() {
    let daemon = Daemon::start();
    let addr = sensor();
    let web = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let deployment = std::fs::read_to_string(Path::new(EXAMPLE).join("deployment.toml"))
        .unwrap()
        .replace("127.0.0.1:5020", &addr)
        .replace("127.0.0.1:8081", &web.to_string())
        .replace("interval_ms = \"1000\"", "interval_ms = \"100\"");
    let component = std::fs::read_to_string(Path::new(EXAMPLE).join("component.toml")).unwrap();
    if !cfg!(feature = "http") {
        // The example serves HTTP: a build without wasi:http refuses it at
        // install, naming the import and the fix, and keeps nothing.
        daemon
            .install("sensor_gateway", Some(&component), &deployment)
            .expect_code(1)
            .stderr_has(&["`http` cargo feature"]);
        assert!(daemon.status("sensor-gateway").is_none());
        return;
    }
    daemon
        .install("sensor_gateway", Some(&component), &deployment)
        .expect_code(0);
    let id = "sensor-gateway";
    let logs = |args: &[&str]| {
        let mut all = vec!["logs", id];
        all.extend_from_slice(args);
        daemon.cli(all).stdout
    };
    let mut seen = String::new();
    for _ in 0..200 {
        seen = logs(&[]);
        if count_in(&seen) >= 3 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(count_in(&seen) >= 3, "{seen}");
    assert!(seen.contains("reading=21.5"), "{seen}");
    let status = daemon.status(id).unwrap();
    assert!(status["worker_pid"].is_u64(), "runs in a worker: {status}");
    // Deny by default, visible: the address it was not granted.
    assert!(seen.contains("denied network: connect 10.255.0.1:502"), "{seen}");
    let warnings = logs(&["--level", "warn"]);
    assert!(warnings.contains("refused as it should be"), "{warnings}");
    assert!(!warnings.contains("reading=21.5"), "{warnings}");
    // Its state, as an operator sees it.
    daemon
        .cli(["kv", id, "get", "latest"])
        .expect_code(0)
        .stdout_has(&["21.5"]);
    // The latest reading over HTTP, from the same state, while it polls.
    #[cfg(feature = "http")]
    {
        let (status, body) = crate::http::request(web, "GET", "/", b"");
        assert_eq!(status, 200, "{body}");
        assert!(body.starts_with("{\"latest\": \"21.5\", \"readings\": "), "{body}");
    }
    // The count survives a restart: it goes on, never back.
    let before = count_in(&logs(&[]));
    daemon.cli(["restart", id]).expect_code(0);
    let mut after = 0;
    for _ in 0..200 {
        let now = logs(&[]);
        let last_start = now.rfind("starting version").unwrap_or(0);
        after = count_in(&now[last_start..]);
        if after > before {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(after > before, "the count went from {before} to {after}");
    // Pointed elsewhere by config, without a redeploy: a sensor it may
    // not reach is refused, and says so.
    daemon.cli(["config", id, "set", "sensor=127.0.0.1:9"]).expect_code(0);
    let mut refused = false;
    for _ in 0..200 {
        if logs(&[]).contains("denied network: connect 127.0.0.1:9") {
            refused = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(refused, "{}", logs(&[]));
}
