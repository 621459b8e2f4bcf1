//! The daemon managed over MQTT through a real mosquitto broker (work in
//! progress, issue 6): presence, last will, a command round trip.

use super::harness::*;
use arcella_core::protocol::frame::{self, LEN_PREFIX};
use arcella_core::protocol::{ClientMessage, DeviceReport, ModuleState, Request, Response, ServerMessage};
use arcella_test_broker::Mosquitto;
use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
use std::time::{Duration, Instant};

fn next_publish(connection: &mut rumqttc::Connection, topic: &str) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(10);
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
fn the_daemon_answers_over_mqtt_and_its_last_will_says_when_it_dies() {
    let broker = Mosquitto::start();
    let mut daemon = Daemon::start_with_config(&format!(
        "[mqtt]\nhost = \"127.0.0.1\"\nport = {}\ndevice = \"gw-9\"\n",
        broker.port()
    ));
    daemon
        .install("ticker", Some(TICKER_COMPONENT), TICKER_SERVICE)
        .expect_code(0);
    let mut options = MqttOptions::new("ops", "127.0.0.1", broker.port());
    options.set_keep_alive(Duration::from_secs(5));
    let (operator, mut inbox) = Client::new(options, 10);
    operator
        .subscribe("arcella/v1/gw-9/presence", QoS::AtLeastOnce)
        .unwrap();
    operator
        .subscribe("arcella/v1/gw-9/reply/ops", QoS::AtLeastOnce)
        .unwrap();
    assert_eq!(next_publish(&mut inbox, "arcella/v1/gw-9/presence"), b"online");

    let command = frame::encode(&ClientMessage {
        id: 5,
        request: Request::List,
    })
    .unwrap();
    operator
        .publish("arcella/v1/gw-9/cmd/ops", QoS::AtLeastOnce, false, command)
        .unwrap();
    let reply = next_publish(&mut inbox, "arcella/v1/gw-9/reply/ops");
    match frame::decode::<ServerMessage>(&reply[LEN_PREFIX..]).unwrap() {
        ServerMessage::Response {
            id: 5,
            result: Ok(Response::Modules(modules)),
        } => assert_eq!(modules[0].id, "ticker"),
        other => panic!("unexpected answer: {other:?}"),
    }

    // The retained state names the board, the engine and the modules.
    operator.subscribe("arcella/v1/gw-9/state", QoS::AtLeastOnce).unwrap();
    let state = next_publish(&mut inbox, "arcella/v1/gw-9/state");
    let report: DeviceReport = frame::decode(&state[LEN_PREFIX..]).unwrap();
    assert_eq!(report.info.board, "generic");
    assert!(report.info.fingerprint.starts_with("wasmtime-48"));
    assert!(report.free_disk > 0 && report.free_memory > 0);
    let ticker = report
        .modules
        .iter()
        .find(|m| m.id == "ticker")
        .expect("ticker reported");
    assert_eq!(ticker.state, ModuleState::Running);

    daemon.kill();
    assert_eq!(next_publish(&mut inbox, "arcella/v1/gw-9/presence"), b"offline");
}
