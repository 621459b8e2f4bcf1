//! The device agent: connects to the broker with a persistent session and
//! a last will, announces itself, answers commands with the same postcard
//! messages as the local socket, reports its state, and hands desired
//! state and artifact chunks to the reconciler.
//!
//! rumqttc needs tokio: its blocking `Client`/`Connection` run on one
//! thread of the agent's own (with rumqttc's current-thread runtime), so
//! the rest of Arcella stays on smol. Three threads in all: the
//! connection, the reporter, the reconciler.

use crate::broker::{BrokerError, BrokerSettings};
use crate::device::Device;
use crate::gate::Gate;
use crate::reconcile::{FleetSettings, Input, Mailbox, Reconciler};
use crate::topics::{self, BadName, DeviceTopics};
use crate::wire;
use arcella_core::protocol::fleet::RemoteCommand;
use arcella_core::protocol::frame;
use arcella_core::protocol::{ErrorKind, Event, RemoteError, ServerMessage};
use rumqttc::{Client, LastWill, Packet, QoS};
use std::sync::Arc;
use std::time::Duration;

/// Where and who the agent is.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The broker and how to log in; the agent adds its session settings.
    pub broker: BrokerSettings,
    /// This device's id, the topics' second level.
    pub device: String,
    pub fleet: FleetSettings,
}

/// Why the agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("device id: {0}")]
    Name(#[from] BadName),
    #[error("MQTT broker settings: {0}")]
    Broker(#[from] BrokerError),
    #[error("cannot start the MQTT thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// The running agent; it stops when the process does.
#[derive(Debug)]
pub struct Agent {
    thread: std::thread::JoinHandle<()>,
}

/// Requests waiting in rumqttc's queue before publishing blocks.
const REQUEST_QUEUE: usize = 64;

impl Agent {
    /// Starts the agent's threads.
    pub fn spawn(config: AgentConfig, device: Arc<dyn Device>) -> Result<Self, AgentError> {
        let topics = DeviceTopics::new(&config.device)?;
        let group_topic = config.fleet.group.as_deref().map(topics::group_desired).transpose()?;
        let mut options = config.broker.options()?;
        // A persistent session: commands sent while the device was away
        // are delivered when it is back (the client id names the session).
        options
            .set_clean_session(false)
            .set_max_packet_size(frame::MAX_FRAME_LEN + 1024, frame::MAX_FRAME_LEN + 1024)
            .set_last_will(LastWill::new(topics.presence(), "offline", QoS::AtLeastOnce, true));
        let (client, mut connection) = Client::new(options, REQUEST_QUEUE);
        connection
            .eventloop
            .set_network_options(crate::broker::network_options());
        let (mailbox, inbox, shared) = Mailbox::new();
        let reconciler = Reconciler::new(
            device.clone(),
            client.clone(),
            topics.clone(),
            config.fleet.clone(),
            shared,
        );
        std::thread::Builder::new()
            .name("arcella-fleet".into())
            .spawn(move || reconciler.run(&inbox))?;
        if let Some(events) = device.events() {
            let (client, topics, device) = (client.clone(), topics.clone(), device.clone());
            let group = config.fleet.group.clone();
            std::thread::Builder::new()
                .name("arcella-mqtt-report".into())
                .spawn(move || report(&client, &topics, device.as_ref(), group.as_deref(), &events))?;
        }
        let serve = Connection {
            client,
            topics,
            group_topic,
            mailbox,
        };
        let thread = std::thread::Builder::new()
            .name("arcella-mqtt".into())
            .spawn(move || serve.run(connection))?;
        Ok(Self { thread })
    }

    /// Whether the agent's connection thread still runs.
    pub fn is_running(&self) -> bool {
        !self.thread.is_finished()
    }
}

/// Publishes the state (retained) now and after every state change, and
/// the events themselves, until the daemon goes.
fn report(
    client: &Client,
    topics: &DeviceTopics,
    device: &dyn Device,
    group: Option<&str>,
    events: &async_channel::Receiver<Event>,
) {
    let publish_state = || {
        let mut report = device.report();
        report.group = group.map(str::to_owned);
        if let Ok(state) = wire::encode(&report) {
            let _ = client.publish(topics.state(), QoS::AtLeastOnce, true, state);
        }
    };
    publish_state();
    while let Ok(event) = events.recv_blocking() {
        if let Ok(bytes) = wire::encode(&event) {
            let _ = client.publish(topics.events(), QoS::AtMostOnce, false, bytes);
        }
        if matches!(event, Event::State { .. }) {
            publish_state();
        }
    }
}

/// The connection thread's share.
struct Connection {
    client: Client,
    topics: DeviceTopics,
    group_topic: Option<String>,
    mailbox: Mailbox,
}

impl Connection {
    fn run(self, mut connection: rumqttc::Connection) {
        let mut backoff = Duration::from_millis(100);
        for event in connection.iter() {
            match event {
                Ok(rumqttc::Event::Incoming(Packet::ConnAck(_))) => {
                    backoff = Duration::from_millis(100);
                    self.on_connect();
                }
                Ok(rumqttc::Event::Incoming(Packet::Publish(publish))) => self.on_publish(&publish),
                Ok(_) => {}
                Err(e) => {
                    // rumqttc reconnects on the next poll; wait a little first.
                    log::warn!("MQTT connection lost ({e}); retrying in {}ms", backoff.as_millis());
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
    }

    /// Never blocks: the event loop must keep polling (pings, acks).
    fn on_connect(&self) {
        let _ = self
            .client
            .try_subscribe(self.topics.commands_filter(), QoS::AtLeastOnce);
        let _ = self.client.try_subscribe(self.topics.desired(), QoS::AtLeastOnce);
        if let Some(topic) = &self.group_topic {
            let _ = self.client.try_subscribe(topic.clone(), QoS::AtLeastOnce);
        }
        let _ = self
            .client
            .try_publish(self.topics.presence(), QoS::AtLeastOnce, true, "online");
        self.mailbox.connected();
    }

    /// Never blocks either.
    fn on_publish(&self, publish: &rumqttc::Publish) {
        let topic = publish.topic.as_str();
        if topic.starts_with(topics::ARTIFACTS_PREFIX) {
            match wire::decode(&publish.payload) {
                // Dropped when the device thread is busy: it asks again.
                Ok(chunk) => drop(self.mailbox.offer(Input::Chunk(chunk))),
                Err(e) => log::warn!("{topic}: not an artifact chunk ({e}); ignored"),
            }
        } else if topic == self.topics.desired() {
            self.mailbox.document(None, publish.payload.to_vec());
        } else if Some(topic) == self.group_topic.as_deref() {
            let group = topic.split('/').nth(3).map(str::to_owned);
            self.mailbox.document(group, publish.payload.to_vec());
        } else if let Some(operator) = topic.rsplit('/').next() {
            let command = Input::Command {
                operator: operator.to_owned(),
                payload: publish.payload.to_vec(),
            };
            if !self.mailbox.offer(command) {
                self.refuse_busy(operator, &publish.payload);
            }
        }
    }

    /// Answers a command the device thread has no room for.
    fn refuse_busy(&self, operator: &str, payload: &[u8]) {
        let Some(id) = wire::body(payload).and_then(frame::peek_request_id) else {
            return;
        };
        let error = RemoteError::new(ErrorKind::Unavailable, "the device is busy; try again");
        if let Ok(topic) = self.topics.reply(operator)
            && let Ok(reply) = wire::encode(&ServerMessage::Response { id, result: Err(error) })
        {
            let _ = self.client.try_publish(topic, QoS::AtLeastOnce, false, reply);
        }
    }
}

/// The reply frame to one command frame from `operator`, if it deserves
/// one: refused by the gate, or answered by the device.
pub(crate) fn answer(payload: &[u8], operator: &str, gate: &mut Gate, device: &dyn Device) -> Option<Vec<u8>> {
    let command = match wire::decode::<RemoteCommand>(payload) {
        Ok(command) => command,
        Err(e) => {
            let id = frame::peek_request_id(wire::body(payload)?)?;
            let error = RemoteError::new(ErrorKind::BadRequest, format!("undecodable request: {e}"));
            return wire::encode(&ServerMessage::Response { id, result: Err(error) }).ok();
        }
    };
    let result = gate
        .admit(operator, &command, device)
        .and_then(|()| device.answer(command.request));
    wire::encode(&ServerMessage::Response { id: command.id, result }).ok()
}
