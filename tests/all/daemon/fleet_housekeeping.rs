//! The fleet's housekeeping, against a real mosquitto and real daemons:
//! operator waits that end however chatty a device is, a chunked fetch
//! that survives a daemon restart, two devices with one id named in the
//! log instead of flapping, and the shipped broker ACL deploying to
//! devices that cannot touch each other's topics.

use super::fleet::{WAIT, artifact, config, signed, ticker_spec, wait_for_fleet};
use super::harness::*;
use arcella_core::digest;
use arcella_core::protocol::Request;
use arcella_core::protocol::fleet::{ArtifactChunk, ArtifactRef, DesiredDocument, DesiredModule, DocumentTarget, Step};
use arcella_core::signing;
use arcella_mqtt::deploy::{self, Outcome, Signer};
use arcella_mqtt::operator::{GATHER_CAP, Operator, Target};
use arcella_mqtt::rumqttc::{self, MqttOptions, QoS};
use arcella_test_broker::{BrokerConfig, Mosquitto};
use ed25519_dalek::SigningKey;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

fn options(broker: &Mosquitto, name: &str, login: Option<(&str, &str)>) -> MqttOptions {
    static COUNT: AtomicU32 = AtomicU32::new(0);
    let n = COUNT.fetch_add(1, Ordering::SeqCst);
    let mut options = MqttOptions::new(format!("test-{name}-{n}"), "127.0.0.1", broker.port());
    options.set_keep_alive(Duration::from_secs(10));
    if let Some((user, password)) = login {
        options.set_credentials(user, password);
    }
    options
}

fn operator(broker: &Mosquitto, login: Option<(&str, &str)>) -> Operator {
    Operator::connect(options(broker, "ops", login), "ops").unwrap()
}

/// A plain MQTT client: every publish it receives comes out of the
/// channel; the connection thread ends when the client is dropped.
fn raw_client(options: MqttOptions) -> (rumqttc::Client, mpsc::Receiver<rumqttc::Publish>) {
    let (client, mut connection) = rumqttc::Client::new(options, 64);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for event in connection.iter() {
            match event {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) => {
                    if tx.send(p).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    });
    (client, rx)
}

/// Runs `f` on a thread of its own and gives its result, or fails the test
/// if it takes longer than `limit` (an operator wait that never ends must
/// fail, not hang the suite).
fn within<T: Send + 'static>(limit: Duration, what: &str, f: impl FnOnce() -> T + Send + 'static) -> (T, Duration) {
    let (tx, rx) = mpsc::channel();
    let started = Instant::now();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(value) => (value, started.elapsed()),
        Err(_) => panic!("{what} did not return within {}s", limit.as_secs()),
    }
}

#[test]
fn operator_waits_used_to_never_end_while_a_device_flooded_its_events_topic() {
    let broker = Mosquitto::start();
    let key = signing::generate().unwrap();
    let _device = Daemon::start_with_config(&config(&broker, "gw-chatty", None, &key));
    let op = operator(&broker, None);
    wait_for_fleet(&op, "gw-chatty online", |fleet| {
        fleet.get("gw-chatty").is_some_and(|v| v.online && v.report.is_some())
    });

    // Something floods gw-chatty's events topic, a message a millisecond.
    let stop = Arc::new(AtomicBool::new(false));
    let (flooder, _) = raw_client(options(&broker, "flood", None));
    let flooding = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut sent = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let _ = flooder.publish("arcella/v1/gw-chatty/events", QoS::AtMostOnce, false, vec![7u8; 64]);
                sent += 1;
                std::thread::sleep(Duration::from_millis(1));
            }
            sent
        })
    };
    std::thread::sleep(Duration::from_millis(300));

    let limit = Duration::from_secs(20);
    let ((op, fleet), took) = within(limit, "Operator::devices", move || {
        let fleet = op.devices(Duration::from_millis(300));
        (op, fleet)
    });
    let fleet = fleet.unwrap();
    assert!(took <= GATHER_CAP + Duration::from_secs(1), "devices() took {took:?}");
    assert!(fleet["gw-chatty"].online, "{fleet:?}");

    let ((op, desired), took) = within(limit, "Operator::desired", move || {
        let desired = op.desired(&Target::Device("gw-chatty".into()));
        (op, desired)
    });
    assert!(desired.unwrap().is_none());
    assert!(took <= GATHER_CAP + Duration::from_secs(1), "desired() took {took:?}");

    // A deploy's follow-up ends at its timeout all told: version 99 never
    // comes, so the device stays pending.
    let timeout = Duration::from_secs(2);
    let (outcomes, took) = within(limit, "deploy::await_convergence", move || {
        deploy::await_convergence(&op, &Target::Device("gw-chatty".into()), 99, timeout, |_, _| {})
    });
    let outcomes = outcomes.unwrap();
    assert!(matches!(outcomes["gw-chatty"], Outcome::Pending(_)), "{outcomes:?}");
    assert!(
        took <= timeout + Duration::from_secs(1),
        "await_convergence took {took:?}"
    );

    stop.store(true, Ordering::SeqCst);
    let sent = flooding.join().unwrap();
    assert!(sent > 1000, "the flood was a trickle: {sent} messages");
}

/// The chunks of `bytes` (as a device asks for them) with index in `range`.
fn publish_chunks(op: &Operator, artifact: &ArtifactRef, bytes: &[u8], range: std::ops::Range<u64>) {
    let hex = digest::hex(&artifact.sha256);
    for index in range {
        let start = (index * u64::from(artifact.chunk_len)) as usize;
        let end = (start + artifact.chunk_len as usize).min(bytes.len());
        let chunk = ArtifactChunk {
            sha256: artifact.sha256,
            index: index as u32,
            data: bytes[start..end].to_vec(),
        };
        let payload = arcella_mqtt::wire::encode(&chunk).unwrap();
        op.publish_raw(&format!("arcella/v1/artifacts/{hex}/{index}"), true, payload)
            .unwrap();
    }
}

#[test]
fn a_chunked_fetch_used_to_start_over_after_a_daemon_restart_now_it_resumes() {
    let broker = Mosquitto::start();
    let key = signing::generate().unwrap();
    let mut device = Daemon::start_with_config(&config(&broker, "gw-r", None, &key));
    let op = operator(&broker, None);
    let target = Target::Device("gw-r".into());
    let bytes = artifact("ballast_1m");
    let chunk_len: u32 = 32 * 1024;
    let artifact_ref = ArtifactRef {
        sha256: digest::sha256(&bytes),
        len: bytes.len() as u64,
        chunk_len,
        signature: signed(&key, &bytes),
    };
    let chunks = artifact_ref.chunks();
    let half = chunks / 2;
    assert!(chunks >= 16, "a multi-chunk artifact: {chunks} chunks");

    // Only the first half of the chunks is on the broker: the device
    // fetches those and waits for the rest.
    publish_chunks(&op, &artifact_ref, &bytes, 0..half);
    let document = DesiredDocument {
        target: DocumentTarget::Device("gw-r".into()),
        version: 1,
        modules: vec![DesiredModule {
            id: "ticker".into(),
            artifact: artifact_ref.clone(),
            variants: Vec::new(),
            component_toml: Some(TICKER_COMPONENT.into()),
            deployment_toml: super::fleet::WORKER_SERVICE.into(),
            run: true,
            source: None,
        }],
    };
    op.publish_desired(&target, &signing::document::sign(&key, &document))
        .unwrap();
    let have = half * u64::from(chunk_len);
    wait_for_fleet(&op, "gw-r holding the first half", |fleet| {
        fleet.get("gw-r").and_then(|v| v.convergence.as_ref()).is_some_and(|c| {
            c.modules
                .iter()
                .any(|m| matches!(m.step, Step::Fetching { received, .. } if received == have))
        })
    });

    // Power cut. Meanwhile the chunks it holds vanish from the broker
    // (purged) and the rest appear: a device that fetched from scratch
    // would wait forever for chunks nobody has any more.
    device.kill();
    let hex = digest::hex(&artifact_ref.sha256);
    for index in 0..half {
        op.publish_raw(&format!("arcella/v1/artifacts/{hex}/{index}"), true, Vec::new())
            .unwrap();
    }
    publish_chunks(&op, &artifact_ref, &bytes, half..chunks);
    device.spawn();
    let outcomes = deploy::await_convergence(&op, &target, 1, WAIT, |_, _| {}).unwrap();
    assert_eq!(outcomes["gw-r"], Outcome::Converged, "{outcomes:?}\n{}", device.log());
    let status = device.status("ticker").expect("ticker installed");
    assert_eq!(state_name(&status), "running", "{status}");
    assert!(
        device
            .log()
            .contains(&format!("uploads: {hex}: resumed with {half} of {chunks} chunks")),
        "{}",
        device.log()
    );
}

/// `New client connected … as CLIENT_ID` lines in mosquitto's log.
fn connections(broker: &Mosquitto, client_id: &str) -> usize {
    let log = std::fs::read_to_string(broker.dir().join("mosquitto.log")).unwrap_or_default();
    let needle = format!(" as {client_id} ");
    log.lines()
        .filter(|l| l.contains("New client connected") && l.contains(&needle))
        .count()
}

#[test]
fn two_devices_with_one_id_used_to_flap_silently_now_the_log_names_the_cause() {
    let broker = Mosquitto::start();
    let key = signing::generate().unwrap();
    let first = Daemon::start_with_config(&config(&broker, "gw1", None, &key));
    let second = Daemon::start_with_config(&config(&broker, "gw1", None, &key));
    let cause = "another device uses device id `gw1`; give each device its own [mqtt] device / client_id";
    let deadline = Instant::now() + WAIT;
    while !(first.log().contains(cause) && second.log().contains(cause)) {
        assert!(
            Instant::now() < deadline,
            "the cause was never named\nfirst:\n{}\nsecond:\n{}",
            first.log(),
            second.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Found out, they back off: over 10 s (50 connections at the ~5/s
    // they used to flap at), a handful at most.
    let before = connections(&broker, "arcella-gw1");
    std::thread::sleep(Duration::from_secs(10));
    let during = connections(&broker, "arcella-gw1") - before;
    assert!(
        during <= 4,
        "{during} connections in 10 s ({before} before)\nfirst:\n{}",
        first.log()
    );
    assert!(before >= 2, "mosquitto's log shows no connections: {before}");
}

/// Device `name`'s arcella.toml for the ACL test: its id is its username.
fn acl_config(broker: &Mosquitto, name: &str, key: &SigningKey) -> String {
    format!(
        "{}username = \"{name}\"\npassword = \"pw-{name}\"\n",
        config(broker, name, Some("north"), key)
    )
}

#[test]
fn the_shipped_acl_lets_a_deploy_through_and_keeps_each_device_to_its_own_topics() {
    // The file operators install, read as shipped.
    let acl = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/packaging/mosquitto-acl.conf")).unwrap();
    let broker = Mosquitto::start_with(&BrokerConfig {
        users: vec![
            ("gw-1".into(), "pw-gw-1".into()),
            ("gw-2".into(), "pw-gw-2".into()),
            ("ops".into(), "pw-ops".into()),
            ("dashboard".into(), "pw-dashboard".into()),
        ],
        acl: Some(acl),
        ..BrokerConfig::default()
    });
    let key = signing::generate().unwrap();
    let gw1 = Daemon::start_with_config(&acl_config(&broker, "gw-1", &key));
    let gw2 = Daemon::start_with_config(&acl_config(&broker, "gw-2", &key));
    let ops = Some(("ops", "pw-ops"));
    let op = operator(&broker, ops);
    let north = Target::Group("north".into());
    wait_for_fleet(&op, "both devices reporting group north", |fleet| {
        deploy::targets(fleet, &north).len() == 2
    });

    // A deploy through the ACL: chunks, the group's desired state,
    // convergence reports.
    let ticker = artifact("ticker");
    let version = deploy::deploy(
        &op,
        &Signer::new(key.clone()),
        &north,
        &ticker,
        64 * 1024,
        signed(&key, &ticker),
        ticker_spec(),
    )
    .unwrap();
    let outcomes = deploy::await_convergence(&op, &north, version, WAIT, |_, _| {}).unwrap();
    assert_eq!(outcomes.len(), 2, "{outcomes:?}");
    assert!(
        outcomes.values().all(|o| *o == Outcome::Converged),
        "{outcomes:?}\ngw-1:\n{}\ngw-2:\n{}",
        gw1.log(),
        gw2.log()
    );
    for device in [&gw1, &gw2] {
        assert_eq!(state_name(&device.status("ticker").unwrap()), "running");
    }
    // Commands and replies pass too.
    assert!(op.call("gw-2", Request::Info, Duration::from_secs(10)).is_ok());
    // A dashboard reads the JSON mirror through the ACL (and only that:
    // the postcard state is not among what it may read).
    let (dash, dashed) = raw_client(options(&broker, "dash", Some(("dashboard", "pw-dashboard"))));
    dash.subscribe("arcella/v1/gw-1/state", QoS::AtLeastOnce).unwrap();
    dash.subscribe("arcella/v1/gw-1/json/state", QoS::AtLeastOnce).unwrap();
    let mirrored = dashed
        .recv_timeout(Duration::from_secs(10))
        .expect("the dashboard reads gw-1's JSON state");
    assert_eq!(mirrored.topic, "arcella/v1/gw-1/json/state");
    let state: serde_json::Value = serde_json::from_slice(&mirrored.payload).unwrap();
    assert_eq!(state["modules"]["ticker"]["state"], "running", "{state}");
    assert!(
        dashed.recv_timeout(Duration::from_millis(300)).is_err(),
        "more than the mirror"
    );
    // A rollout's progress, which operators publish per group, too (the
    // signed postcard state beside it is not for dashboards).
    op.publish_raw("arcella/v1/group/north/rollout", true, b"signed state".to_vec())
        .unwrap();
    op.publish_raw("arcella/v1/group/north/json/rollout", true, b"{}".to_vec())
        .unwrap();
    dash.subscribe("arcella/v1/group/north/rollout", QoS::AtLeastOnce)
        .unwrap();
    dash.subscribe("arcella/v1/group/north/json/rollout", QoS::AtLeastOnce)
        .unwrap();
    let progress = dashed
        .recv_timeout(Duration::from_secs(10))
        .expect("the dashboard reads the group's rollout progress");
    assert_eq!(progress.topic, "arcella/v1/group/north/json/rollout");
    assert!(
        dashed.recv_timeout(Duration::from_millis(300)).is_err(),
        "the signed state too"
    );

    // gw-1's credentials try to read gw-2's commands, desired state and
    // reports. The group's desired state, which gw-1 may read, shows the
    // subscriptions were made.
    let gw1_login = Some(("gw-1", "pw-gw-1"));
    let (spy, spied) = raw_client(options(&broker, "gw-1-spy", gw1_login));
    // A marker gw-1 may read, published after the rest by the same
    // client: mosquitto forwards one client's messages in order.
    let marker = format!("arcella/v1/artifacts/{}/0", "00".repeat(32));
    for filter in [
        "arcella/v1/gw-2/cmd/+",
        "arcella/v1/gw-2/desired",
        "arcella/v1/gw-2/state",
        "arcella/v1/gw-2/presence",
        "arcella/v1/group/north/desired",
        &marker,
    ] {
        spy.subscribe(filter, QoS::AtLeastOnce).unwrap();
    }
    let first = spied
        .recv_timeout(Duration::from_secs(10))
        .expect("gw-1 reads its group's desired state");
    assert_eq!(first.topic, "arcella/v1/group/north/desired");
    op.publish_raw("arcella/v1/gw-2/desired", true, b"for gw-2 only".to_vec())
        .unwrap();
    assert!(op.call("gw-2", Request::Info, Duration::from_secs(10)).is_ok());
    op.publish_raw(&marker, false, b"marker".to_vec()).unwrap();
    // The next thing gw-1 reads is the marker: nothing of gw-2's came first.
    let next = spied
        .recv_timeout(Duration::from_secs(10))
        .expect("the marker reaches gw-1");
    assert_eq!(
        next.topic,
        marker,
        "gw-1 read {} ({} bytes)",
        next.topic,
        next.payload.len()
    );

    // gw-1's credentials try to speak for gw-2, to command it, and to
    // publish desired state, artifacts and commands; an operator listens.
    let (watch, watched) = raw_client(options(&broker, "watch", ops));
    let forged_topics = [
        "arcella/v1/gw-2/presence",
        "arcella/v1/gw-2/state",
        "arcella/v1/gw-2/json/state",
        "homeassistant/sensor/arcella_gw-2/module_ticker/config",
        "arcella/v1/gw-2/reply/ops",
        "arcella/v1/gw-2/instance",
        "arcella/v1/gw-2/cmd/ops",
        "arcella/v1/gw-2/desired",
        "arcella/v1/gw-1/desired",
        "arcella/v1/gw-1/cmd/ops",
        "arcella/v1/group/north/desired",
        "arcella/v1/group/south/desired",
        &format!("arcella/v1/artifacts/{}/1", "00".repeat(32)),
    ];
    let own_events = "arcella/v1/gw-1/events";
    for topic in forged_topics.iter().copied().chain([own_events]) {
        watch.subscribe(topic, QoS::AtLeastOnce).unwrap();
    }
    // Retained messages the subscriptions bring first are not forged.
    std::thread::sleep(Duration::from_millis(500));
    while watched.try_recv().is_ok() {}
    let (forger, _) = raw_client(options(&broker, "gw-1-forger", gw1_login));
    for topic in forged_topics {
        forger
            .publish(topic, QoS::AtLeastOnce, true, b"forged".to_vec())
            .unwrap();
    }
    forger
        .publish(own_events, QoS::AtLeastOnce, false, b"marker".to_vec())
        .unwrap();
    loop {
        let p = watched
            .recv_timeout(Duration::from_secs(10))
            .expect("gw-1's own event gets through");
        assert_ne!(&p.payload[..], b"forged", "gw-1 published on {}", p.topic);
        if p.topic == own_events {
            break;
        }
    }
    // What gw-2 runs and reports is untouched.
    assert_eq!(state_name(&gw2.status("ticker").unwrap()), "running");
    let fleet = op.devices(Duration::from_millis(300)).unwrap();
    assert!(fleet["gw-2"].online, "{fleet:?}");
    drop((spy, forger, watch, dash));
}
