//! A real mosquitto broker for the MQTT tests: started on a free loopback
//! port with its own config, killed when dropped. Needs `mosquitto`
//! (Debian: the `mosquitto` package; `.ci/run` installs it).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use arcella_mqtt::topics::DeviceTopics;
use rumqttc::{Client, Event, LastWill, MqttOptions, Packet, QoS};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Broker {
    port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Broker {
    fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("mosquitto.conf");
        std::fs::write(
            &config,
            format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stderr\n"),
        )
        .unwrap();
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto must be installed (apt-get install mosquitto)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "mosquitto did not listen on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { port, child, _dir: dir }
    }

    fn options(&self, id: &str) -> MqttOptions {
        let mut options = MqttOptions::new(id, "127.0.0.1", self.port);
        options.set_keep_alive(Duration::from_secs(5));
        options
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
    let broker = Broker::start();
    let topics = DeviceTopics::new("gw-1").unwrap();

    let mut device = broker.options("gw-1");
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

    let (watcher, mut watching) = Client::new(broker.options("ops"), 10);
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
