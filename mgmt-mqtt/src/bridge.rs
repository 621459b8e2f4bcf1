//! The MQTT bridge: the device's message bus joined to a broker under
//! `[bridge]` (core/src/daemon/config/bridge.rs, docs/messaging.md).
//!
//! Two threads. The connection thread drives rumqttc's event loop (it
//! never blocks on anything else, so pings and acks keep flowing),
//! subscribes to every `[[bridge.in]]` remote filter on each connect, and
//! publishes what arrives on the bus under the route's local topic. The
//! outgoing thread takes messages from the bridge's own subscription on the
//! bus (the `[[bridge.out]]` local filters) and publishes them on the
//! broker, only while connected. While the broker is away, messages wait
//! in that subscription's queue: bounded by `buffer`, the oldest dropped
//! first, every drop counted (and logged when the broker is back). A
//! message the bridge brought in never goes back out.

use crate::broker::{BrokerError, BrokerSettings};
use arcella_core::daemon::config::bridge::{BridgeSettings, Map, route};
use arcella_core::host::messaging::bus::{Bus, Origin, Subscription};
use arcella_core::protocol::messaging::{BusMessage, MAX_DATA};
use rumqttc::{Client, Event, Packet, QoS};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

/// Requests queued for rumqttc before the outgoing thread waits.
const REQUEST_QUEUE: usize = 64;
/// The wait before rumqttc tries the broker again.
const RETRY: Duration = Duration::from_secs(1);

/// Why the bridge could not start.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error("[bridge] {0}")]
    Broker(#[from] BrokerError),
    #[error("[bridge] {key}: {message}")]
    Invalid { key: &'static str, message: String },
    #[error("[bridge] cannot start its thread: {0}")]
    Thread(std::io::Error),
}

/// Whether the broker is connected now.
#[derive(Default)]
struct Link {
    up: Mutex<bool>,
    changed: Condvar,
}

impl Link {
    fn set(&self, up: bool) {
        *self.up.lock().unwrap_or_else(PoisonError::into_inner) = up;
        self.changed.notify_all();
    }

    fn wait_up(&self) {
        let mut up = self.up.lock().unwrap_or_else(PoisonError::into_inner);
        while !*up {
            up = self.changed.wait(up).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// The running bridge (its threads live as long as the process).
#[derive(Debug)]
pub struct Bridge;

/// rumqttc options for `[bridge]`, with its password read.
pub fn broker_settings(settings: &BridgeSettings, device: Option<&str>) -> Result<BrokerSettings, BridgeError> {
    let password = settings.read_password().map_err(|message| BridgeError::Invalid {
        key: "password_file",
        message,
    })?;
    let broker = BrokerSettings {
        username: settings.username.clone(),
        password,
        ca_file: settings.ca_file.clone(),
        client_cert: settings.client_cert.clone(),
        client_key: settings.client_key.clone(),
        ..BrokerSettings::new(settings.url.clone(), settings.client_id(device))
    };
    broker.options()?;
    Ok(broker)
}

impl Bridge {
    /// Joins `bus` to the broker of `broker`, routing as `settings` says.
    pub fn spawn(settings: &BridgeSettings, broker: &BrokerSettings, bus: Arc<Bus>) -> Result<Self, BridgeError> {
        let invalid = |(key, message)| BridgeError::Invalid { key, message };
        let out = settings.out_maps().map_err(invalid)?;
        let inward = settings.in_maps().map_err(invalid)?;
        let mut options = broker.options()?;
        // A persistent session: QoS 1 messages for our subscriptions wait
        // at the broker while we are away.
        options
            .set_clean_session(false)
            .set_max_packet_size(64 * 1024, 64 * 1024);
        let (client, connection) = Client::new(options, REQUEST_QUEUE);
        let link = Arc::new(Link::default());
        let filters = out.iter().map(|m| m.from.filter()).collect::<Vec<_>>();
        let outgoing = (!filters.is_empty()).then(|| bus.subscribe_bridge(filters, settings.buffer));
        let incoming = Incoming {
            client: client.clone(),
            maps: inward,
            bus,
            link: link.clone(),
            url: settings.url.clone(),
        };
        std::thread::Builder::new()
            .name("bridge-mqtt".into())
            .spawn(move || incoming.run(connection))
            .map_err(BridgeError::Thread)?;
        if let Some(queue) = outgoing {
            std::thread::Builder::new()
                .name("bridge-out".into())
                .spawn(move || forward(&client, &out, &queue, &link))
                .map_err(BridgeError::Thread)?;
        }
        Ok(Self)
    }
}

fn qos(level: u8) -> QoS {
    if level == 0 { QoS::AtMostOnce } else { QoS::AtLeastOnce }
}

/// The outgoing thread: bus → broker, only while connected.
fn forward(client: &Client, maps: &[Map], queue: &Subscription, link: &Link) {
    let mut reported = 0;
    loop {
        let message = smol::block_on(queue.next());
        link.wait_up();
        let drops = queue.counters().drops();
        if drops > reported {
            log::warn!(
                "bridge: {} messages for the broker dropped (the oldest first) while it was away or slow; \
                 [bridge] buffer bounds how many wait",
                drops - reported
            );
            reported = drops;
        }
        let Some((map, topic)) = route(maps, &message.topic) else {
            continue;
        };
        if client.publish(topic, qos(map.qos), false, message.data).is_err() {
            return;
        }
    }
}

struct Incoming {
    client: Client,
    maps: Vec<Map>,
    bus: Arc<Bus>,
    link: Arc<Link>,
    url: String,
}

impl Incoming {
    fn run(self, mut connection: rumqttc::Connection) {
        let mut warned = false;
        for event in connection.iter() {
            match event {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    log::info!("bridge: connected to {}", self.url);
                    warned = false;
                    for map in &self.maps {
                        // Never blocks: this thread drives the event loop.
                        let _ = self.client.try_subscribe(map.from.filter(), qos(map.qos));
                    }
                    self.link.set(true);
                }
                Ok(Event::Incoming(Packet::Publish(publish))) => self.on_publish(&publish),
                Ok(_) => {}
                Err(e) => {
                    self.link.set(false);
                    if !warned {
                        log::warn!(
                            "bridge: the broker {} is away ({e}); retrying every {}s",
                            self.url,
                            RETRY.as_secs()
                        );
                        warned = true;
                    }
                    std::thread::sleep(RETRY);
                }
            }
        }
    }

    fn on_publish(&self, publish: &rumqttc::Publish) {
        let counters = self.bus.counters("bridge");
        let Some((_, topic)) = route(&self.maps, &publish.topic) else {
            return;
        };
        if publish.payload.len() > MAX_DATA {
            counters.denied();
            log::debug!(
                "bridge: a {}-byte message for {topic} is over the bus's limit",
                publish.payload.len()
            );
            return;
        }
        counters.published();
        let message = BusMessage {
            topic,
            data: publish.payload.to_vec(),
            content_type: None,
            metadata: Vec::new(),
        };
        self.bus.publish(&Origin::Bridge, &message);
    }
}
