//! A real mosquitto broker for the MQTT tests: started on a free loopback
//! port with its own config, killed when dropped. Needs `mosquitto`
//! (Debian: the `mosquitto` package; `.ci/run` installs it).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use arcella_core::daemon::uploads::Piece;
use arcella_core::protocol::frame::{self, LEN_PREFIX};
use arcella_core::protocol::{ClientMessage, DaemonInfo, Request, Response, ServerMessage};
use arcella_core::protocol::{DeviceReport, ErrorKind, RemoteError};
use arcella_core::signing::TrustPolicy;
use arcella_mqtt::agent::{Agent, AgentConfig};
use arcella_mqtt::device::Device;
use arcella_mqtt::reconcile::FleetSettings;
use arcella_mqtt::topics::DeviceTopics;
use arcella_test_broker::Mosquitto;
use rumqttc::{Client, Event, LastWill, MqttOptions, Packet, QoS};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn options(broker: &Mosquitto, id: &str) -> MqttOptions {
    let mut options = MqttOptions::new(id, "127.0.0.1", broker.port());
    options.set_keep_alive(Duration::from_secs(5));
    options
}

/// The next publish on `topic` seen by a connection, within 5 s.
fn next_publish(connection: &mut rumqttc::Connection, topic: &str) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(5);
    for event in connection.iter() {
        assert!(Instant::now() < deadline, "nothing on {topic}");
        if let Ok(Event::Incoming(Packet::Publish(p))) = event
            && p.topic == topic
        {
            return p.payload.to_vec();
        }
    }
    panic!("the connection ended before anything arrived on {topic}");
}

#[test]
fn presence_is_retained_and_the_last_will_marks_a_vanished_device_offline() {
    let broker = Mosquitto::start();
    let topics = DeviceTopics::new("gw-1").unwrap();

    let mut device = options(&broker, "gw-1");
    device.set_last_will(LastWill::new(topics.presence(), "offline", QoS::AtLeastOnce, true));
    let (client, mut connection) = Client::new(device, 10);
    client
        .publish(topics.presence(), QoS::AtLeastOnce, true, "online")
        .unwrap();
    // Drive the device's connection until its publish is acknowledged.
    for event in connection.iter() {
        if let Ok(Event::Incoming(Packet::PubAck(_))) = event {
            break;
        }
    }

    let (watcher, mut watching) = Client::new(options(&broker, "ops"), 10);
    watcher.subscribe(topics.presence(), QoS::AtLeastOnce).unwrap();
    assert_eq!(
        next_publish(&mut watching, &topics.presence()),
        b"online",
        "retained presence"
    );

    // The device vanishes without a DISCONNECT, as a crash would.
    drop(client);
    drop(connection);
    assert_eq!(next_publish(&mut watching, &topics.presence()), b"offline", "last will");
}

fn info() -> DaemonInfo {
    DaemonInfo {
        version: "0.1.0".into(),
        protocol: arcella_core::protocol::PROTOCOL_VERSION,
        fingerprint: "fp".into(),
        target: "x86_64".into(),
        board: "test-board".into(),
        data_dir: "/d".into(),
        uptime_secs: 1,
        modules: 0,
    }
}

/// A device that only knows `Info`.
struct InfoOnly(std::path::PathBuf);

impl Device for InfoOnly {
    fn answer(&self, request: Request) -> Result<Response, RemoteError> {
        match request {
            Request::Info => Ok(Response::Info(info())),
            other => Err(RemoteError::new(
                ErrorKind::BadRequest,
                format!("not in this test: {other:?}"),
            )),
        }
    }
    fn stage(&self, _: &Piece<'_>) -> Result<(u64, bool), RemoteError> {
        Err(RemoteError::new(ErrorKind::Unavailable, "no staging in this test"))
    }
    fn missing(&self, _: &[u8; 32]) -> Option<Vec<u64>> {
        None
    }
    fn is_staged(&self, _: &[u8; 32]) -> bool {
        false
    }
    fn report(&self) -> DeviceReport {
        DeviceReport {
            info: info(),
            free_disk: 0,
            free_memory: 0,
            modules: vec![],
            group: None,
        }
    }
    fn events(&self) -> Option<async_channel::Receiver<arcella_core::protocol::Event>> {
        None
    }
    fn state_dir(&self) -> std::path::PathBuf {
        self.0.clone()
    }
}

#[test]
fn a_command_travels_through_the_broker_and_its_answer_comes_back() {
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let agent = Agent::spawn(
        AgentConfig {
            host: "127.0.0.1".into(),
            port: broker.port(),
            device: "gw-2".into(),
            fleet: FleetSettings {
                group: None,
                trust: TrustPolicy::default(),
            },
        },
        Arc::new(InfoOnly(dir.path().to_owned())),
    )
    .unwrap();
    let topics = DeviceTopics::new("gw-2").unwrap();
    let (operator, mut replies) = Client::new(options(&broker, "ops"), 10);
    operator.subscribe(topics.presence(), QoS::AtLeastOnce).unwrap();
    operator
        .subscribe(topics.reply("ops").unwrap(), QoS::AtLeastOnce)
        .unwrap();
    // Once the device is online, its command subscription is in place.
    assert_eq!(next_publish(&mut replies, &topics.presence()), b"online");
    let command = frame::encode(&ClientMessage {
        id: 41,
        request: Request::Info,
    })
    .unwrap();
    operator
        .publish(topics.command("ops").unwrap(), QoS::AtLeastOnce, false, command)
        .unwrap();
    let reply = next_publish(&mut replies, &topics.reply("ops").unwrap());
    let answer: ServerMessage = frame::decode(&reply[LEN_PREFIX..]).unwrap();
    assert_eq!(
        answer,
        ServerMessage::Response {
            id: 41,
            result: Ok(Response::Info(info())),
        }
    );
    // Garbage gets an error naming the problem, not silence or a crash.
    operator
        .publish(
            topics.command("ops").unwrap(),
            QoS::AtLeastOnce,
            false,
            vec![9, 0, 0, 0, 7, 250, 250, 250, 250],
        )
        .unwrap();
    let reply = next_publish(&mut replies, &topics.reply("ops").unwrap());
    let answer: ServerMessage = frame::decode(&reply[LEN_PREFIX..]).unwrap();
    match answer {
        ServerMessage::Response { id: 7, result: Err(e) } => assert!(e.message.contains("undecodable"), "{e}"),
        other => panic!("expected an error for request 7, got {other:?}"),
    }
    assert!(agent.is_running());
}
