//! The device agent: connects to the broker with a persistent session and
//! a last will, announces itself, answers commands with the same postcard
//! messages as the local socket, reports its state, and hands desired
//! state and artifact chunks to the reconciler.
//!
//! rumqttc needs tokio: its blocking `Client`/`Connection` run on one
//! thread of the agent's own (with rumqttc's current-thread runtime), so
//! the rest of Arcella stays on smol. Three threads in all: the
//! connection, the reporter, the reconciler.
//!
//! Two devices configured with one device id (one client id) would take
//! the broker session from each other at every connect and overwrite each
//! other's retained state. Each run of the agent therefore publishes a
//! random instance id, retained, on `arcella/v1/<device>/instance` and
//! listens there: another id arriving names the problem in the log, and
//! reconnects back off (a backoff is reset only by a connection that
//! lasted [`STABLE`], not by a ConnAck), so such devices reconnect every
//! few seconds at most instead of several times a second.

use crate::broker::{BrokerError, BrokerSettings};
use crate::device::Device;
use crate::gate::Gate;
use crate::json::JsonSettings;
use crate::reconcile::{FleetSettings, Input, Mailbox, Reconciler};
use crate::report::Reporter;
use crate::topics::{self, BadName, DeviceTopics};
use crate::wire;
use arcella_core::protocol::fleet::RemoteCommand;
use arcella_core::protocol::frame;
use arcella_core::protocol::{ErrorKind, RemoteError, ServerMessage};
use rumqttc::{Client, LastWill, Packet, QoS};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where and who the agent is.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The broker and how to log in; the agent adds its session settings.
    pub broker: BrokerSettings,
    /// This device's id, the topics' second level.
    pub device: String,
    pub fleet: FleetSettings,
    /// The JSON mirror (None: off, `[mqtt] json = false`).
    pub json: Option<JsonSettings>,
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

/// The first wait before reconnecting, and the longest.
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A connection that lasted this long resets the backoff.
pub const STABLE: Duration = Duration::from_secs(10);
/// The least wait before reconnecting once another device was seen
/// using this device id.
const DUPLICATE_BACKOFF: Duration = Duration::from_secs(10);
/// Connections in a row dropped before [`STABLE`] that earn a warning.
const SHORT_IN_A_ROW: u32 = 3;

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
            let reporter = Reporter::new(
                client.clone(),
                topics.clone(),
                device.clone(),
                config.fleet.group.clone(),
                config.json.clone(),
            );
            std::thread::Builder::new()
                .name("arcella-mqtt-report".into())
                .spawn(move || reporter.run(&events))?;
        }
        let serve = Connection {
            client,
            topics,
            group_topic,
            mailbox,
            device: config.device.clone(),
            client_id: config.broker.client_id.clone(),
            instance: instance_id(),
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

/// A random id for this run of the agent (128 bits, hex), from the
/// OS-seeded keys of std's `RandomState`: no extra dependency.
fn instance_id() -> String {
    use std::hash::BuildHasher;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let a = std::collections::hash_map::RandomState::new().hash_one((std::process::id(), now));
    let b = std::collections::hash_map::RandomState::new().hash_one((a, now));
    format!("{a:016x}{b:016x}")
}

/// When to reconnect. No I/O: the connection thread tells it what
/// happened, it says how long to wait.
#[derive(Debug)]
struct Reconnect {
    /// The next wait.
    delay: Duration,
    /// When the current connection was accepted.
    since: Option<Instant>,
    /// ConnAcks so far in this run.
    connections: u32,
    /// Another device's instance was seen on the current connection.
    duplicate: bool,
    /// This run's own instance came back on the current connection.
    echoed: bool,
    /// Connections in a row that dropped before [`STABLE`].
    short: u32,
}

impl Reconnect {
    fn new() -> Self {
        Self {
            delay: MIN_BACKOFF,
            since: None,
            connections: 0,
            duplicate: false,
            echoed: false,
            short: 0,
        }
    }

    fn connected(&mut self, now: Instant) {
        self.since = Some(now);
        self.connections += 1;
        self.echoed = false;
    }

    /// Whether what arrives on the instance topic now may be this device's
    /// own past: on the first connection of a run, before its own instance
    /// came back, the topic (retained) and the persistent session (queued)
    /// may still hold the previous run's.
    fn may_be_history(&self) -> bool {
        self.connections <= 1 && !self.echoed
    }

    /// Another device uses this device id: wait longer from now on.
    fn duplicate(&mut self) {
        self.duplicate = true;
        self.delay = self.delay.max(DUPLICATE_BACKOFF);
    }

    /// The connection (or an attempt) failed: how long to wait before the
    /// next attempt. Only a connection that lasted [`STABLE`] with no sign
    /// of a duplicate starts the backoff over.
    fn lost(&mut self, now: Instant) -> Duration {
        match self.since.take().map(|since| now.saturating_duration_since(since)) {
            Some(lasted) if lasted >= STABLE && !self.duplicate => {
                self.delay = MIN_BACKOFF;
                self.short = 0;
            }
            Some(_) => self.short += 1,
            None => {}
        }
        self.duplicate = false;
        let wait = self.delay;
        self.delay = (self.delay * 2).min(MAX_BACKOFF);
        wait
    }
}

/// The connection thread's share.
struct Connection {
    client: Client,
    topics: DeviceTopics,
    group_topic: Option<String>,
    mailbox: Mailbox,
    device: String,
    client_id: String,
    /// This run's [`instance_id`].
    instance: String,
}

impl Connection {
    fn run(self, mut connection: rumqttc::Connection) {
        let mut reconnect = Reconnect::new();
        let instance_topic = self.topics.instance();
        for event in connection.iter() {
            match event {
                Ok(rumqttc::Event::Incoming(Packet::ConnAck(_))) => {
                    reconnect.connected(Instant::now());
                    self.on_connect();
                }
                Ok(rumqttc::Event::Incoming(Packet::Publish(publish))) if publish.topic == instance_topic => {
                    if *publish.payload == *self.instance.as_bytes() {
                        reconnect.echoed = true;
                    } else if self.is_another_device(&publish, reconnect.may_be_history()) {
                        reconnect.duplicate();
                    }
                }
                Ok(rumqttc::Event::Incoming(Packet::Publish(publish))) => self.on_publish(&publish),
                Ok(_) => {}
                Err(e) => {
                    // rumqttc reconnects on the next poll; wait first.
                    let wait = reconnect.lost(Instant::now());
                    if reconnect.short == SHORT_IN_A_ROW {
                        log::warn!(
                            "the MQTT connection was dropped {SHORT_IN_A_ROW} times in a row within {}s of \
                             being accepted; if another device uses client id `{}` (device id `{}`), give each \
                             device its own [mqtt] device / client_id",
                            STABLE.as_secs(),
                            self.client_id,
                            self.device
                        );
                    }
                    log::warn!("MQTT connection lost ({e}); retrying in {}ms", wait.as_millis());
                    std::thread::sleep(wait);
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
        // Subscribed before publishing: the broker handles one
        // connection's packets in order, so the retained instance this
        // subscription brings is the one before ours.
        let _ = self.client.try_subscribe(self.topics.instance(), QoS::AtLeastOnce);
        let _ = self
            .client
            .try_publish(self.topics.instance(), QoS::AtLeastOnce, true, self.instance.clone());
        let _ = self
            .client
            .try_publish(self.topics.presence(), QoS::AtLeastOnce, true, "online");
        self.mailbox.connected();
    }

    /// Whether another instance id on this device's `instance` topic is
    /// another device's (and says so in the log); not when it `may_be_history`.
    fn is_another_device(&self, publish: &rumqttc::Publish, may_be_history: bool) -> bool {
        let theirs = String::from_utf8_lossy(&publish.payload);
        if theirs.is_empty() {
            return false;
        }
        if may_be_history {
            log::debug!(
                "instance {theirs} was here before this run ({}); taking over",
                self.instance
            );
            return false;
        }
        log::error!(
            "another device uses device id `{}`; give each device its own [mqtt] device / client_id \
             (instance {theirs} replaced this one's, {}, on {}; client id `{}`). Until then this \
             device reconnects at most every {}s",
            self.device,
            self.instance,
            publish.topic,
            self.client_id,
            DUPLICATE_BACKOFF.as_secs()
        );
        true
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
    let result = gate.admit(operator, &command, device).and_then(|()| {
        let actor = arcella_core::protocol::audit::Actor::Operator {
            name: operator.to_owned(),
        };
        device.answer(&actor, command.request)
    });
    wire::encode(&ServerMessage::Response { id: command.id, result }).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connack_no_longer_resets_the_backoff_only_a_lasting_connection_does() {
        let mut r = Reconnect::new();
        let t0 = Instant::now();
        // Kicked off 100 ms after every ConnAck: the waits keep growing.
        let mut waits = Vec::new();
        for i in 0..5 {
            let at = t0 + Duration::from_secs(i);
            r.connected(at);
            waits.push(r.lost(at + Duration::from_millis(100)));
        }
        assert_eq!(waits, [100, 200, 400, 800, 1600].map(Duration::from_millis));
        assert_eq!(r.short, 5);
        // A connection that lasted starts over.
        r.connected(t0);
        assert_eq!(r.lost(t0 + STABLE), MIN_BACKOFF);
        assert_eq!(r.short, 0);
        // Failed attempts (no ConnAck) back off up to the cap.
        for _ in 0..20 {
            r.lost(t0);
        }
        assert_eq!(r.lost(t0), MAX_BACKOFF);
    }

    #[test]
    fn once_another_device_is_seen_even_a_lasting_connection_keeps_the_long_wait() {
        let mut r = Reconnect::new();
        let t0 = Instant::now();
        r.connected(t0);
        r.duplicate();
        assert_eq!(r.lost(t0 + STABLE * 2), DUPLICATE_BACKOFF);
        // The other device went away: the next lasting connection resets.
        r.connected(t0);
        assert_eq!(r.lost(t0 + STABLE), MIN_BACKOFF);
    }

    #[test]
    fn only_the_first_connection_of_a_run_may_meet_its_own_past_before_its_echo() {
        let mut r = Reconnect::new();
        let t0 = Instant::now();
        r.connected(t0);
        assert!(r.may_be_history());
        r.echoed = true;
        assert!(!r.may_be_history());
        r.lost(t0);
        r.connected(t0);
        assert!(
            !r.may_be_history(),
            "on a reconnect, another instance is another device"
        );
    }

    #[test]
    fn instance_ids_differ_between_runs() {
        let a = instance_id();
        assert_eq!(a.len(), 32);
        assert_ne!(a, instance_id());
    }
}
