//! `cargo bench --bench messaging`: messages per second through the
//! device's bus and through the MQTT bridge.
//!
//! - the bus alone (native publish + take, no guest);
//! - guest to guest in the daemon's process: the `messenger` guest
//!   publishes N messages, a second `messenger` handles them (its queue
//!   holds all N, so none is dropped); the clock runs from the first
//!   publish until the handler has finished the last;
//! - the bridge out: N messages published on the bus reach a real
//!   mosquitto (counted by a subscriber there, QoS 0 and QoS 1);
//! - the bridge in: N messages published on mosquitto reach the bus.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use arcella_core::EngineProfile;
use arcella_core::artifact::ArtifactStore;
use arcella_core::daemon::config::BridgeSettings;
use arcella_core::engine::new_engine;
use arcella_core::host::HostServices;
use arcella_core::host::messaging::backend::Served;
use arcella_core::host::messaging::bus::{Bus, Origin};
use arcella_core::protocol::messaging::BusMessage;
use arcella_core::run::{self, Grants, Invocation, Limits, LogBook, Output};
use arcella_test_broker::Mosquitto;
use arcella_test_programs::artifact;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const N: usize = 4000;
const GUEST: &str = "messenger_p2";

fn message(topic: &str, i: usize) -> BusMessage {
    BusMessage {
        topic: topic.into(),
        data: format!("m{i}").into_bytes(),
        content_type: None,
        metadata: Vec::new(),
    }
}

fn bus_alone() {
    let bus = Bus::new();
    let sub = bus.subscribe("h", vec!["bench/#".into()], N);
    let began = Instant::now();
    for i in 0..N {
        bus.publish(&Origin::Module("p".into()), &message("bench/x", i));
    }
    while sub.try_next().is_some() {}
    let rate = N as f64 / began.elapsed().as_secs_f64();
    println!("bus alone (native):                 {rate:>10.0} messages/s");
}

fn guests(store: &ArtifactStore, id: &str) {
    let profile = EngineProfile::default();
    let engine = new_engine(&profile).unwrap();
    let program = store.load(&engine, &profile, id).unwrap();
    let bus = Bus::new();
    let sub = Arc::new(bus.subscribe("handler", vec!["bench/#".into()], N));
    let executor = smol::Executor::new();
    let limits = Limits::default();
    smol::block_on(executor.run(async_compat::Compat::new(async {
        let book = LogBook::new("handler", None);
        let handler_host = HostServices {
            inbox: Some(sub.clone()),
            ..HostServices::default()
        };
        let grants = Grants {
            args: vec!["handler".into(), "handle".into()],
            subscribe: vec!["bench/#".into()],
            ..Grants::default()
        };
        let output = Output::Capture(book);
        let handler_program = program.clone();
        let (profile_h, limits_h) = (profile.clone(), limits.clone());
        let handler = executor.spawn(async_compat::Compat::new(async move {
            let invocation = Invocation {
                name: "handler",
                program: &handler_program,
                grants: &grants,
                limits: &limits_h,
                profile: &profile_h,
                output: &output,
                entrypoint: None,
                stop: None,
                health: None,
                provide: None,
                usage: None,
                host: &handler_host,
            };
            let _ = run::run(&invocation).await;
        }));
        let publisher_host = HostServices {
            messaging: Some(Arc::new(Served {
                bus: bus.clone(),
                module: "publisher".into(),
                publish: vec!["bench/#".into()],
                counters: bus.counters("publisher"),
                denials: None,
            })),
            ..HostServices::default()
        };
        let grants = Grants {
            args: vec!["publisher".into(), "publish".into(), "bench/x".into(), N.to_string()],
            ..Grants::default()
        };
        let book = LogBook::new("publisher", None);
        let output = Output::Capture(book.clone());
        let invocation = Invocation {
            name: "publisher",
            program: &program,
            grants: &grants,
            limits: &limits,
            profile: &profile,
            output: &output,
            entrypoint: None,
            stop: None,
            health: None,
            provide: None,
            usage: None,
            host: &publisher_host,
        };
        let began = Instant::now();
        assert_eq!(run::run(&invocation).await.unwrap(), 0);
        let published = began.elapsed();
        while bus.stats("handler").unwrap().handled < N as u64 {
            smol::Timer::after(Duration::from_millis(1)).await;
        }
        let all = began.elapsed();
        drop(handler);
        println!(
            "guest → guest, in-process:         {:>10.0} messages/s ({:.0}/s published)",
            N as f64 / all.as_secs_f64(),
            N as f64 / published.as_secs_f64()
        );
    })));
}

fn bridge_out(qos: u8) {
    let broker = Mosquitto::start();
    let bus = Bus::new();
    let settings: BridgeSettings = toml::from_str(&format!(
        "url = \"{}\"\nclient_id = \"bench-out-{qos}\"\nbuffer = {N}\n[[out]]\nlocal = \"bench/#\"\nremote = \"far/#\"\nqos = {qos}\n",
        broker.url()
    ))
    .unwrap();
    let broker_settings = arcella_mqtt::bridge::broker_settings(&settings, None).unwrap();
    arcella_mqtt::bridge::Bridge::spawn(&settings, &broker_settings, bus.clone()).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let mut sub = std::process::Command::new("mosquitto_sub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &broker.port().to_string(),
            "-t",
            "far/#",
            "-C",
            &N.to_string(),
        ])
        .args(["-q", &qos.to_string()])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let began = Instant::now();
    for i in 0..N {
        bus.publish(&Origin::Module("p".into()), &message("bench/x", i));
        if i % 512 == 511 {
            // Within the bridge's buffer: none dropped.
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    sub.wait().unwrap();
    let rate = N as f64 / began.elapsed().as_secs_f64();
    let dropped = bus.stats("bridge").map_or(0, |s| s.dropped);
    println!("bridge out to mosquitto, QoS {qos}:    {rate:>10.0} messages/s (dropped {dropped})");
}

fn bridge_in() {
    let broker = Mosquitto::start();
    let bus = Bus::new();
    let sub = bus.subscribe("h", vec!["near/#".into()], N);
    let settings: BridgeSettings = toml::from_str(&format!(
        "url = \"{}\"\nclient_id = \"bench-in\"\n[[in]]\nremote = \"far/#\"\nlocal = \"near/#\"\n",
        broker.url()
    ))
    .unwrap();
    let broker_settings = arcella_mqtt::bridge::broker_settings(&settings, None).unwrap();
    arcella_mqtt::bridge::Bridge::spawn(&settings, &broker_settings, bus.clone()).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let lines: String = (0..N).map(|i| format!("m{i}\n")).collect();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), lines).unwrap();
    let began = Instant::now();
    let status = std::process::Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &broker.port().to_string(), "-t", "far/x", "-l"])
        .stdin(std::fs::File::open(file.path()).unwrap())
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    while bus.stats("h").unwrap().received < N as u64 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    let got = bus.stats("h").unwrap().received;
    let rate = got as f64 / began.elapsed().as_secs_f64();
    drop(sub);
    println!("bridge in from mosquitto, QoS 0:    {rate:>10.0} messages/s ({got} of {N})");
}

fn main() {
    let data = tempfile::tempdir().unwrap();
    let store = ArtifactStore::open(data.path()).unwrap();
    let bytes = std::fs::read(artifact(GUEST, "native")).unwrap();
    let id = store.put_bytes(&bytes, Path::new(GUEST)).unwrap();
    println!("arcella messaging bench ({N} messages of ~5 bytes)\n");
    bus_alone();
    guests(&store, &id);
    bridge_out(0);
    bridge_out(1);
    bridge_in();
}
