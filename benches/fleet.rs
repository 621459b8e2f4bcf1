//! Fleet figures through a real mosquitto on loopback:
//! - command round trip over MQTT (p50/p99), against the same request on
//!   the local socket (the baseline, same daemon, same run);
//! - a 1 MiB module deployed to a group of simulated devices (one daemon
//!   process each, its own data dir) until every one reports `running`;
//! - broker bytes sent per device for that deploy, against the artifact's
//!   size;
//! - the cost of signing and verifying one request and one desired-state
//!   document (Ed25519, as the operator and the device do it);
//! - what an idle fleet costs the broker link per device and hour with
//!   telemetry every 60 s and log forwarding off (the default): the
//!   readings' and keepalives' sizes as the broker carried them;
//! - a staged rollout of the next version to the same devices in 4 waves
//!   (`1,10%,50%,100%`) with a 5 s soak: wall time, and the messages and
//!   bytes the broker sent per device.
//!
//! Every deploy here is signed (document and artifact) and verified by
//! every device, and devices wait out each module's health window before
//! saying "healthy", as in the field.
//!
//! `cargo bench --bench fleet` (ARCELLA_BENCH_DEVICES=N, default 100).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use arcella_core::client::Client;
use arcella_core::protocol::Request;
use arcella_core::protocol::fleet::{DesiredDocument, DesiredModule, DocumentTarget, RemoteCommand};
use arcella_core::signing;
use arcella_mqtt::deploy::{self, ModuleSpec, Outcome, Signer};
use arcella_mqtt::operator::{Operator, Target};
use arcella_test_broker::{BrokerConfig, Mosquitto};
use std::time::{Duration, Instant};

const SAMPLES: usize = 500;
/// The bench's telemetry interval: short, so a window of a few seconds
/// holds readings from every device; the hourly figure is scaled to 60 s.
const TELEMETRY_SECS: u64 = 5;

fn operator(broker: &Mosquitto) -> Operator {
    let options = arcella_mqtt::rumqttc::MqttOptions::new("bench-ops", "127.0.0.1", broker.port());
    Operator::connect(options, "bench").unwrap()
}

fn config(broker: &Mosquitto, device: &str, key: &ed25519_dalek::SigningKey) -> String {
    format!(
        "log_level = \"warn\"\n[mqtt]\nurl = \"mqtt://127.0.0.1:{}\"\ndevice = \"{device}\"\ngroup = \"bench\"\ntrusted_keys = [\"{}\"]\nallow_remote_trusted = true\ntelemetry = \"{TELEMETRY_SECS}s\"\n",
        broker.port(),
        signing::public_to_text(&key.verifying_key())
    )
}

/// `$SYS/broker/bytes/sent`, as mosquitto last published it.
fn bytes_sent(op: &Operator) -> u64 {
    sys_counter(op, "$SYS/broker/bytes/sent")
}

/// A `$SYS` counter, as mosquitto last published it.
fn sys_counter(op: &Operator, topic: &str) -> u64 {
    // Behind a backlog of fleet messages it may take a few asks.
    (0..5)
        .find_map(|_| {
            op.retained(topic, Duration::from_millis(1000))
                .unwrap()
                .iter()
                .rev()
                .find_map(|(_, p)| std::str::from_utf8(p).ok()?.trim().parse().ok())
        })
        .expect("mosquitto publishes its $SYS counters (sys_interval)")
}

fn main() {
    let broker = Mosquitto::start_with(&BrokerConfig {
        sys_stats: true,
        ..BrokerConfig::default()
    });
    round_trip(&broker, "default broker settings");
    let tuned = Mosquitto::start_with(&BrokerConfig {
        tcp_nodelay: true,
        ..BrokerConfig::default()
    });
    round_trip(&tuned, "broker with set_tcp_nodelay true");
    let devices: usize = std::env::var("ARCELLA_BENCH_DEVICES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100);
    signing_costs();
    deploy_to_group(&broker, devices);
}

/// Median of `f`'s time over `n` runs, in µs.
fn median_us(n: usize, mut f: impl FnMut()) -> f64 {
    let mut times: Vec<f64> = (0..n)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[n / 2]
}

fn signing_costs() {
    let key = signing::generate().unwrap();
    let trust = signing::TrustPolicy {
        trusted_keys: vec![key.verifying_key().to_bytes()],
        allow_unsigned: false,
    };
    let mut command = RemoteCommand {
        id: 1,
        request: Request::Stop {
            module: "sensor".into(),
        },
        auth: None,
        artifact_signature: None,
    };
    let sign = median_us(2000, || signing::request::sign(&key, "gw-1", "ops", 7, &mut command));
    let verify = median_us(2000, || {
        signing::request::verify(&trust, "gw-1", "ops", &command).unwrap();
    });
    // A document of 10 modules with realistic manifests.
    let module = DesiredModule {
        id: "sensor".into(),
        artifact: arcella_core::protocol::fleet::ArtifactRef {
            sha256: [7; 32],
            len: 1 << 20,
            chunk_len: 64 * 1024,
            signature: Some(signing::sign(&key, &[7; 32])),
        },
        variants: Vec::new(),
        component_toml: Some("name = \"sensor\"\nversion = \"1.2.3\"\n".into()),
        deployment_toml: "kind = \"service\"\n[limits]\nmemory = \"16M\"\n".repeat(4),
        run: true,
        source: None,
    };
    let document = DesiredDocument {
        target: DocumentTarget::Group("north".into()),
        version: 42,
        modules: vec![module; 10],
    };
    let signed = signing::document::sign(&key, &document);
    let doc_sign = median_us(500, || drop(signing::document::sign(&key, &document)));
    let doc_open = median_us(500, || drop(signing::document::open(&trust, &signed).unwrap()));
    println!("signing (Ed25519, median):");
    println!("  request: sign {sign:.1} µs, verify {verify:.1} µs (goal: well under the ~1 ms MQTT round trip)");
    println!(
        "  desired-state document of 10 modules ({} bytes): sign {doc_sign:.1} µs, verify+decode {doc_open:.1} µs",
        signed.body.len()
    );
}

fn round_trip(broker: &Mosquitto, setup: &str) {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("a.sock");
    let mut daemon = support::spawn_daemon_with_config(
        dir.path(),
        &socket,
        // Not of the group deployed to below.
        &config(broker, "rtt", &signing::generate().unwrap()).replace("group = \"bench\"\n", ""),
    );
    let op = operator(broker);
    // The device is online once it answers.
    let deadline = Instant::now() + Duration::from_secs(20);
    while op.call("rtt", Request::Info, Duration::from_secs(1)).is_err() {
        assert!(Instant::now() < deadline, "device never answered");
    }
    let mut mqtt: Vec<Duration> = (0..SAMPLES)
        .map(|_| {
            let t = Instant::now();
            op.call("rtt", Request::Info, Duration::from_secs(5)).unwrap();
            t.elapsed()
        })
        .collect();
    let mut client = Client::connect(&socket, "bench").unwrap();
    let mut local: Vec<Duration> = (0..SAMPLES)
        .map(|_| {
            let t = Instant::now();
            client.call(Request::Info).unwrap();
            t.elapsed()
        })
        .collect();
    let (m50, m99) = (
        support::percentile(&mut mqtt, 0.5),
        support::percentile(&mut mqtt, 0.99),
    );
    let (l50, l99) = (
        support::percentile(&mut local, 0.5),
        support::percentile(&mut local, 0.99),
    );
    println!("command round trip (Info, {SAMPLES} samples), {setup}");
    println!("  over MQTT (mosquitto 2.0, loopback): p50 {m50:.1} µs, p99 {m99:.1} µs");
    println!("  over the local socket (baseline): p50 {l50:.1} µs, p99 {l99:.1} µs");
    println!("  ratio MQTT/socket at p50: {:.2}x", m50 / l50);
    let _ = daemon.kill();
    let _ = daemon.wait();
}

fn deploy_to_group(broker: &Mosquitto, count: usize) {
    let key = signing::generate().unwrap();
    let signer = Signer::new(key.clone());
    let dir = tempfile::tempdir().unwrap();
    let mut daemons: Vec<_> = (0..count)
        .map(|i| {
            let home = dir.path().join(format!("d{i:03}"));
            std::fs::create_dir_all(&home).unwrap();
            support::spawn_daemon_with_config(
                &home,
                &home.join("s.sock"),
                &config(broker, &format!("dev-{i:03}"), &key),
            )
        })
        .collect();
    let op = operator(broker);
    let group = Target::Group("bench".into());
    let deadline = Instant::now() + Duration::from_secs(60);
    while deploy::targets(&op.devices(Duration::from_millis(500)).unwrap(), &group).len() < count {
        assert!(Instant::now() < deadline, "not every device reported");
    }
    // The sample service with 1 MiB of incompressible data: a 1 MiB wasm
    // module, whose artifact holds the data twice (the wasm data segment
    // and wasmtime's memory image).
    let artifact = std::fs::read(arcella_test_programs::artifact("ballast_1m", "native")).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let before = bytes_sent(&op);
    let spec = ModuleSpec {
        id: "ticker".into(),
        component_toml: Some("name = \"ticker\"\nversion = \"1.0.0\"\n".into()),
        deployment_toml: "kind = \"service\"\nisolation = \"main\"\ntrusted = true\n[update]\nhealth_window = \"1s\"\n"
            .into(),
        run: true,
    };
    let start = Instant::now();
    let signature = signing::sign(&key, &arcella_core::digest::sha256(&artifact));
    let version = deploy::deploy(&op, &signer, &group, &artifact, 64 * 1024, Some(signature), spec).unwrap();
    let outcomes = deploy::await_convergence(&op, &group, version, Duration::from_secs(180), |_, _| {}).unwrap();
    let elapsed = start.elapsed();
    let converged = outcomes.values().filter(|o| **o == Outcome::Converged).count();
    for (id, outcome) in outcomes.iter().filter(|(_, o)| **o != Outcome::Converged).take(5) {
        println!("  not healthy: {id}: {outcome:?}");
    }
    // Let mosquitto publish its counters once more after the last byte.
    std::thread::sleep(Duration::from_millis(2500));
    let sent = bytes_sent(&op) - before;
    println!(
        "deploy of a 1 MiB module ({} KiB artifact) to {count} devices (one daemon process each)",
        artifact.len() / 1024
    );
    println!(
        "  {converged}/{count} healthy after {:.2} s (signed and verified; includes the 1 s health window; 2.62 s before signing and health windows)",
        elapsed.as_secs_f64()
    );
    println!(
        "  broker bytes sent: {} KiB in all, {} KiB per device ({:.2}x the artifact)",
        sent / 1024,
        sent / count as u64 / 1024,
        sent as f64 / count as f64 / artifact.len() as f64
    );
    idle_traffic(broker, &op, count);
    staged_rollout(broker, &op, &key, count);
    for daemon in &mut daemons {
        let _ = daemon.kill();
        let _ = daemon.wait();
    }
}

/// An idle fleet's traffic: every telemetry reading that reaches the
/// broker in a window is measured as the broker carried it (MQTT header,
/// topic, payload), beside the broker's own count of bytes received; the
/// hour is then a reading a minute and a keepalive ping every 30 s each
/// way (PINGREQ and PINGRESP, 2 bytes each), plus the PUBACK of each
/// QoS 1 reading (4 bytes).
fn idle_traffic(broker: &Mosquitto, op: &Operator, count: usize) {
    const WINDOW: Duration = Duration::from_secs(3 * TELEMETRY_SECS);
    let watcher = broker.subscriber("arcella/v1/+/json/telemetry", 1_000_000, WINDOW.as_secs() as u32, None);
    let received_before = sys_counter(op, "$SYS/broker/bytes/received");
    let lines = watcher.lines();
    let received = sys_counter(op, "$SYS/broker/bytes/received") - received_before;
    // `mosquitto_sub -v` prints `topic payload`: the publish on the wire
    // is a 2-byte fixed header (3 past 127 bytes), the topic with its
    // 2-byte length, a 2-byte packet id (QoS 1) and the payload.
    let sizes: Vec<usize> = lines
        .iter()
        .skip(count) // the retained readings the subscription brings first
        .filter_map(|l| l.split_once(' '))
        .map(|(topic, payload)| {
            let body = 2 + topic.len() + 2 + payload.len();
            body + if body > 127 { 3 } else { 2 }
        })
        .collect();
    assert!(!sizes.is_empty(), "no telemetry reading in {WINDOW:?}");
    let mean = sizes.iter().sum::<usize>() as f64 / sizes.len() as f64;
    let per_hour = 60.0 * (mean + 4.0) + 120.0 * 4.0;
    println!("idle fleet, {count} devices, log forwarding off, telemetry every {TELEMETRY_SECS} s in the window");
    println!(
        "  {} readings in {} s, {mean:.0} bytes each on the wire (broker's count of all bytes received: {} per device-second)",
        sizes.len(),
        WINDOW.as_secs(),
        received / count as u64 / WINDOW.as_secs()
    );
    println!(
        "  per device and hour at telemetry = \"60s\": {:.1} KiB (readings, their PUBACKs, keepalive pings); {:.1} MiB for {count} devices",
        per_hour / 1024.0,
        per_hour * count as f64 / 1024.0 / 1024.0
    );
    println!(
        "  at the default telemetry = \"5m\": {:.1} KiB per device and hour",
        (12.0 * (mean + 4.0) + 120.0 * 4.0) / 1024.0
    );
}

/// A staged rollout of the sample service (replacing the 1 MiB one) to
/// every device, 4 waves, 5 s soak, 1 s health window, as
/// `fleet rollout start` runs it.
fn staged_rollout(broker: &Mosquitto, op: &Operator, key: &ed25519_dalek::SigningKey, count: usize) {
    use arcella_mqtt::rollout::{self, Plan, Release, Ticket};
    let ticket = Ticket::new("bench", "bench-rollout");
    let mut options = arcella_mqtt::rumqttc::MqttOptions::new("bench-rollout", "127.0.0.1", broker.port());
    options.set_last_will(ticket.last_will().unwrap());
    let runner = Operator::connect(options, "bench-rollout").unwrap();
    let artifact = std::fs::read(arcella_test_programs::artifact("ticker", "native")).unwrap();
    let builds = [deploy::Build {
        fingerprint: None,
        artifact: &artifact,
        signature: Some(signing::sign(key, &arcella_core::digest::sha256(&artifact))),
    }];
    let plan = Plan {
        waves: rollout::parse_waves("1,10%,50%,100%").unwrap(),
        soak: Duration::from_secs(5),
        max_failures: rollout::Amount::Count(0),
        wave_timeout: Duration::from_secs(120),
    };
    let release = Release {
        builds: &builds,
        source: None,
        chunk_len: 64 * 1024,
        module: ModuleSpec {
            id: "ticker".into(),
            component_toml: Some("name = \"ticker\"\nversion = \"1.0.1\"\n".into()),
            deployment_toml:
                "kind = \"service\"\nisolation = \"main\"\ntrusted = true\n[update]\nhealth_window = \"1s\"\n".into(),
            run: true,
        },
    };
    std::thread::sleep(Duration::from_millis(1500));
    let (bytes_before, messages_before) = (bytes_sent(op), sys_counter(op, "$SYS/broker/messages/sent"));
    let start = Instant::now();
    let state = rollout::run(&runner, &Signer::new(key.clone()), &ticket, &plan, release, &mut |_| {}).unwrap();
    let elapsed = start.elapsed();
    std::thread::sleep(Duration::from_millis(2500));
    let bytes = bytes_sent(op) - bytes_before;
    let messages = sys_counter(op, "$SYS/broker/messages/sent") - messages_before;
    let waves: Vec<String> = state.waves.iter().map(|w| w.len().to_string()).collect();
    println!(
        "staged rollout to {count} devices, waves of {} (1,10%,50%,100%), 5 s soak, 1 s health window",
        waves.join(", ")
    );
    println!(
        "  done in {:.1} s (goal: the waves' health windows and soaks, 4 x 6 s = 24 s, plus the devices' work); failures {}",
        elapsed.as_secs_f64(),
        state.failures()
    );
    println!(
        "  broker sent {} messages ({:.0} per device) and {} KiB ({:.1} KiB per device; the artifact is {} KiB)",
        messages,
        messages as f64 / count as f64,
        bytes / 1024,
        bytes as f64 / count as f64 / 1024.0,
        artifact.len() / 1024
    );
}
