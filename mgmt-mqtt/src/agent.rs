//! The device agent (work in progress): connects to the broker with a
//! persistent session and a last will, announces itself, answers commands
//! with the same postcard messages as the local socket.
//!
//! rumqttc needs tokio: its blocking `Client`/`Connection` run on one
//! thread of the agent's own (with rumqttc's current-thread runtime), so
//! the rest of Arcella stays on smol.

use crate::broker::{BrokerError, BrokerSettings};
use crate::topics::{BadName, DeviceTopics};
use arcella_core::protocol::frame::{self, LEN_PREFIX};
use arcella_core::protocol::{ClientMessage, DeviceReport, ErrorKind, RemoteError, Request, Response, ServerMessage};
use rumqttc::{Client, Event, LastWill, Packet, QoS};
use std::sync::Arc;
use std::time::Duration;

/// Answers one request (the daemon's dispatcher, or a test's).
pub type Handler = Arc<dyn Fn(Request) -> Result<Response, RemoteError> + Send + Sync>;

/// What the agent reports: the device's state (published retained on
/// connect and after every event) and the events themselves.
pub struct Reporter {
    pub report: Box<dyn Fn() -> DeviceReport + Send>,
    pub events: async_channel::Receiver<arcella_core::protocol::Event>,
}

impl std::fmt::Debug for Reporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reporter").finish_non_exhaustive()
    }
}

/// Where and who the agent is.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The broker and how to log in; the agent adds its session settings.
    pub broker: BrokerSettings,
    /// This device's id, the topics' second level.
    pub device: String,
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

impl Agent {
    /// Starts the agent on a thread of its own (and, with a reporter, a
    /// second one that publishes state and events as they change).
    pub fn spawn(config: AgentConfig, handler: Handler, reporter: Option<Reporter>) -> Result<Self, AgentError> {
        let topics = DeviceTopics::new(&config.device)?;
        let mut options = config.broker.options()?;
        // A persistent session: commands sent while the device was away
        // are delivered when it is back (the client id names the session).
        options
            .set_clean_session(false)
            .set_max_packet_size(frame::MAX_FRAME_LEN + 1024, frame::MAX_FRAME_LEN + 1024)
            .set_last_will(LastWill::new(topics.presence(), "offline", QoS::AtLeastOnce, true));
        let (client, connection) = Client::new(options, 64);
        if let Some(reporter) = reporter {
            let client = client.clone();
            let topics = topics.clone();
            std::thread::Builder::new()
                .name("arcella-mqtt-report".into())
                .spawn(move || report(&client, &topics, &reporter))?;
        }
        let thread = std::thread::Builder::new()
            .name("arcella-mqtt".into())
            .spawn(move || serve(&client, connection, &topics, &handler))?;
        Ok(Self { thread })
    }

    /// Whether the agent's thread still runs.
    pub fn is_running(&self) -> bool {
        !self.thread.is_finished()
    }
}

/// Publishes the state (retained) now and after every event, and the
/// events themselves, until the daemon goes.
fn report(client: &Client, topics: &DeviceTopics, reporter: &Reporter) {
    let publish_state = || {
        if let Ok(state) = frame::encode(&(reporter.report)()) {
            let _ = client.publish(topics.state(), QoS::AtLeastOnce, true, state);
        }
    };
    publish_state();
    while let Ok(event) = reporter.events.recv_blocking() {
        if let Ok(bytes) = frame::encode(&event) {
            let _ = client.publish(topics.events(), QoS::AtMostOnce, false, bytes);
        }
        if matches!(event, arcella_core::protocol::Event::State { .. }) {
            publish_state();
        }
    }
}

fn serve(client: &Client, mut connection: rumqttc::Connection, topics: &DeviceTopics, handler: &Handler) {
    let mut backoff = Duration::from_millis(100);
    for event in connection.iter() {
        match event {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                backoff = Duration::from_millis(100);
                let _ = client.subscribe(topics.commands_filter(), QoS::AtLeastOnce);
                let _ = client.publish(topics.presence(), QoS::AtLeastOnce, true, "online");
            }
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                let Some(operator) = publish.topic.rsplit('/').next() else {
                    continue;
                };
                let Ok(reply_topic) = topics.reply(operator) else {
                    continue;
                };
                if let Some(reply) = answer(&publish.payload, handler) {
                    let _ = client.publish(reply_topic, QoS::AtLeastOnce, false, reply);
                }
            }
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

/// The reply frame to one command frame, if it deserves one.
fn answer(payload: &[u8], handler: &Handler) -> Option<Vec<u8>> {
    let body = payload.get(LEN_PREFIX..)?;
    let message = match frame::decode::<ClientMessage>(body) {
        Ok(message) => message,
        Err(e) => {
            let id = frame::peek_request_id(body)?;
            let error = RemoteError::new(ErrorKind::BadRequest, format!("undecodable request: {e}"));
            return frame::encode(&ServerMessage::Response { id, result: Err(error) }).ok();
        }
    };
    let result = handler(message.request);
    frame::encode(&ServerMessage::Response { id: message.id, result }).ok()
}
