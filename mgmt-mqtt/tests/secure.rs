//! The agent against a real mosquitto that wants proof: TLS (the broker's
//! CA, client certificates) and username/password with an ACL that keeps
//! each device inside its own topics. A refused agent must stay offline
//! and keep retrying, never panic.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use arcella_mqtt::agent::{Agent, AgentConfig};
use arcella_mqtt::broker::BrokerSettings;
use arcella_mqtt::topics::DeviceTopics;
use arcella_test_broker::{BrokerConfig, Mosquitto, TlsFiles};
use common::pki::{Ca, Issued};
use common::{client, info_device, no_fleet, round_trip};
use rumqttc::QoS;
use std::time::Duration;

/// How long a refused agent is watched for a presence it must not reach;
/// its backoff retries about five times meanwhile.
const REFUSED_FOR: Duration = Duration::from_secs(3);

fn spawn(device: &str, broker: BrokerSettings) -> Agent {
    let config = AgentConfig {
        broker,
        device: device.into(),
        fleet: no_fleet(),
        json: None,
    };
    Agent::spawn(config, info_device()).unwrap()
}

/// A TLS broker with a server certificate for `localhost` from `ca`.
fn tls_broker(ca: &Ca, require_client_cert: bool) -> Mosquitto {
    let server = ca.server("localhost");
    Mosquitto::start_with(&BrokerConfig {
        tls: Some(TlsFiles {
            ca: ca.pem.clone(),
            cert: server.cert,
            key: server.key,
            require_client_cert,
        }),
        ..BrokerConfig::default()
    })
}

/// `mqtts://localhost:PORT`, trusting `ca`, presenting `identity`.
fn tls_settings(broker: &Mosquitto, client_id: &str, ca: &Ca, identity: Option<&Issued>) -> BrokerSettings {
    BrokerSettings {
        ca_file: Some(ca.pem.clone()),
        client_cert: identity.map(|i| i.cert.clone()),
        client_key: identity.map(|i| i.key.clone()),
        ..BrokerSettings::new(broker.url(), client_id)
    }
}

#[test]
fn over_tls_an_agent_trusting_the_brokers_ca_answers_commands() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "fleet-ca");
    let broker = tls_broker(&ca, false);
    assert!(broker.url().starts_with("mqtts://localhost:"));
    let agent = spawn("gw-1", tls_settings(&broker, "arcella-gw-1", &ca, None));
    let (operator, mut inbox) = client(tls_settings(&broker, "ops", &ca, None).options().unwrap());
    round_trip(&operator, &mut inbox, "gw-1");
    assert!(agent.is_running());
}

#[test]
fn when_the_broker_requires_client_certificates_only_an_agent_with_one_gets_in() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "fleet-ca");
    let broker = tls_broker(&ca, true);
    let without = spawn("gw-2", tls_settings(&broker, "arcella-gw-2", &ca, None));
    let with = spawn(
        "gw-1",
        tls_settings(&broker, "arcella-gw-1", &ca, Some(&ca.client("gw-1"))),
    );
    let ops = ca.client("ops");
    let (operator, mut inbox) = client(tls_settings(&broker, "ops", &ca, Some(&ops)).options().unwrap());
    round_trip(&operator, &mut inbox, "gw-1");

    let gw2 = DeviceTopics::new("gw-2").unwrap();
    operator.subscribe(gw2.presence(), QoS::AtLeastOnce).unwrap();
    inbox.assert_silent(&gw2.presence(), REFUSED_FOR);
    assert!(with.is_running() && without.is_running());
}

#[test]
fn an_agent_trusting_another_ca_never_comes_online_and_keeps_retrying() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "fleet-ca");
    let stranger = Ca::new(dir.path(), "other-ca");
    let broker = tls_broker(&ca, false);
    let agent = spawn("gw-1", tls_settings(&broker, "arcella-gw-1", &stranger, None));

    let (operator, mut inbox) = client(tls_settings(&broker, "ops", &ca, None).options().unwrap());
    let presence = DeviceTopics::new("gw-1").unwrap().presence();
    operator.subscribe(&presence, QoS::AtLeastOnce).unwrap();
    inbox.assert_silent(&presence, REFUSED_FOR);
    assert!(agent.is_running(), "the agent's thread must keep retrying, not end");
}

/// Devices may read their commands and write under their own id; the
/// operator may do anything under `arcella/v1/`.
const ACL: &str = "\
pattern read arcella/v1/%u/cmd/#
pattern write arcella/v1/%u/#

user ops
topic readwrite arcella/v1/#
";

fn broker_with_users() -> Mosquitto {
    Mosquitto::start_with(&BrokerConfig {
        users: vec![("gw-1".into(), "pw1".into()), ("ops".into(), "opspw".into())],
        acl: Some(ACL.into()),
        ..BrokerConfig::default()
    })
}

fn login(broker: &Mosquitto, client_id: &str, user: &str, password: &str) -> BrokerSettings {
    BrokerSettings {
        username: Some(user.into()),
        password: Some(password.into()),
        ..BrokerSettings::new(broker.url(), client_id)
    }
}

#[test]
fn with_the_right_credentials_a_device_answers_within_its_acl() {
    let broker = broker_with_users();
    let agent = spawn("gw-1", login(&broker, "arcella-gw-1", "gw-1", "pw1"));
    let (operator, mut inbox) = client(login(&broker, "ops", "ops", "opspw").options().unwrap());
    round_trip(&operator, &mut inbox, "gw-1");
    assert!(agent.is_running());
}

#[test]
fn with_a_wrong_password_a_device_never_comes_online() {
    let broker = broker_with_users();
    let agent = spawn("gw-1", login(&broker, "arcella-gw-1", "gw-1", "not-pw1"));
    let (operator, mut inbox) = client(login(&broker, "ops", "ops", "opspw").options().unwrap());
    let presence = DeviceTopics::new("gw-1").unwrap().presence();
    operator.subscribe(&presence, QoS::AtLeastOnce).unwrap();
    inbox.assert_silent(&presence, REFUSED_FOR);
    assert!(agent.is_running(), "the agent's thread must keep retrying, not end");
}

#[test]
fn a_device_cannot_publish_as_another_device() {
    let broker = broker_with_users();
    let (operator, mut inbox) = client(login(&broker, "ops", "ops", "opspw").options().unwrap());
    let gw1 = DeviceTopics::new("gw-1").unwrap();
    let gw2 = DeviceTopics::new("gw-2").unwrap();
    operator.subscribe("arcella/v1/+/presence", QoS::AtLeastOnce).unwrap();
    operator.subscribe(gw1.events(), QoS::AtLeastOnce).unwrap();
    inbox.acked();
    inbox.acked();

    // gw-1's own agent is seen coming online.
    let _agent = spawn("gw-1", login(&broker, "arcella-gw-1", "gw-1", "pw1"));
    assert_eq!(inbox.next_publish(&gw1.presence()), b"online");

    // gw-1's credentials on another connection try to speak for gw-2, then
    // say something in gw-1's own name. Mosquitto handles one connection's
    // publishes in order, so had the first got through, it would arrive
    // before the second.
    let (forger, mut forging) = client(login(&broker, "gw-1-forger", "gw-1", "pw1").options().unwrap());
    forger
        .publish(gw2.presence(), QoS::AtLeastOnce, true, "online")
        .unwrap();
    forging.acked();
    forger.publish(gw1.events(), QoS::AtLeastOnce, false, "marker").unwrap();
    forging.acked();
    assert_eq!(inbox.next_publish(&gw1.events()), b"marker");
    inbox.assert_silent(&gw2.presence(), Duration::from_secs(2));
}
