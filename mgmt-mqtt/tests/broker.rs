//! The agent against a real mosquitto on plain TCP, anonymous: presence,
//! last will, a command round trip, garbage. Credentials and TLS are in
//! `secure.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use arcella_core::protocol::ServerMessage;
use arcella_core::protocol::frame::{self, LEN_PREFIX};
use arcella_mqtt::agent::{Agent, AgentConfig};
use arcella_mqtt::broker::BrokerSettings;
use arcella_mqtt::topics::DeviceTopics;
use arcella_test_broker::Mosquitto;
use common::{client, info_device, no_fleet, round_trip};
use rumqttc::{Client, Event, LastWill, MqttOptions, Packet, QoS};
use std::time::Duration;

fn options(broker: &Mosquitto, id: &str) -> MqttOptions {
    BrokerSettings::new(broker.url(), id).options().unwrap()
}

#[test]
fn presence_is_retained_and_the_last_will_marks_a_vanished_device_offline() {
    let broker = Mosquitto::start();
    let topics = DeviceTopics::new("gw-1").unwrap();

    let mut device = options(&broker, "gw-1");
    device.set_keep_alive(Duration::from_secs(5));
    device.set_last_will(LastWill::new(topics.presence(), "offline", QoS::AtLeastOnce, true));
    let (device, mut connection) = Client::new(device, 10);
    device
        .publish(topics.presence(), QoS::AtLeastOnce, true, "online")
        .unwrap();
    // Drive the device's connection until its publish is acknowledged.
    for event in connection.iter() {
        if let Ok(Event::Incoming(Packet::PubAck(_))) = event {
            break;
        }
    }

    let (watcher, mut watching) = client(options(&broker, "ops"));
    watcher.subscribe(topics.presence(), QoS::AtLeastOnce).unwrap();
    assert_eq!(
        watching.next_publish(&topics.presence()),
        b"online",
        "retained presence"
    );

    // The device vanishes without a DISCONNECT, as a crash would.
    drop(device);
    drop(connection);
    assert_eq!(watching.next_publish(&topics.presence()), b"offline", "last will");
}

#[test]
fn a_command_travels_through_the_broker_and_its_answer_comes_back() {
    let broker = Mosquitto::start();
    let agent = Agent::spawn(
        AgentConfig {
            broker: BrokerSettings::new(broker.url(), "arcella-gw-2"),
            device: "gw-2".into(),
            fleet: no_fleet(),
            json: None,
        },
        info_device(),
    )
    .unwrap();
    let (operator, mut inbox) = client(options(&broker, "ops"));
    round_trip(&operator, &mut inbox, "gw-2");

    // Garbage gets an error naming the problem, not silence or a crash.
    let topics = DeviceTopics::new("gw-2").unwrap();
    operator
        .publish(
            topics.command("ops").unwrap(),
            QoS::AtLeastOnce,
            false,
            vec![9, 0, 0, 0, 7, 250, 250, 250, 250],
        )
        .unwrap();
    let reply = inbox.next_publish(&topics.reply("ops").unwrap());
    let answer: ServerMessage = frame::decode(&reply[LEN_PREFIX..]).unwrap();
    match answer {
        ServerMessage::Response { id: 7, result: Err(e) } => assert!(e.message.contains("undecodable"), "{e}"),
        other => panic!("expected an error for request 7, got {other:?}"),
    }
    assert!(agent.is_running());
}
