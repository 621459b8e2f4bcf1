//! What the MQTT tests share: an operator's inbox that keeps every publish
//! it sees (so waiting for one message never loses another), a handler
//! answering `Info`, and the command round trip.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

pub mod pki;

use arcella_core::daemon::uploads::Piece;
use arcella_core::protocol::DeviceReport;
use arcella_core::protocol::fleet::RemoteCommand;
use arcella_core::protocol::frame::{self, LEN_PREFIX};
use arcella_core::protocol::{DaemonInfo, ErrorKind, RemoteError, Request, Response, ServerMessage};
use arcella_mqtt::device::Device;
use arcella_mqtt::reconcile::FleetSettings;
use arcella_mqtt::topics::DeviceTopics;
use rumqttc::{Client, Connection, Event, MqttOptions, Packet, QoS, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a message that should come may take.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// A connection driven by the test thread, with what it received.
pub struct Inbox {
    connection: Connection,
    /// Publishes received and not yet taken, oldest first.
    unread: Vec<rumqttc::Publish>,
    acks: usize,
    /// The last connection error, for the message of a wait that failed.
    last_error: Option<String>,
}

impl Inbox {
    pub fn new(connection: Connection) -> Self {
        Self {
            connection,
            unread: Vec::new(),
            acks: 0,
            last_error: None,
        }
    }

    /// Drives the connection until `deadline`, or until `done` says so
    /// (checked after every event). rumqttc reconnects after an error on
    /// the next poll, so an error is only remembered: a wait that then
    /// fails shows it.
    fn poll_until(&mut self, deadline: Instant, mut done: impl FnMut(&Self) -> bool) -> bool {
        loop {
            if done(self) {
                return true;
            }
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return false;
            };
            match self.connection.recv_timeout(left) {
                Ok(Ok(Event::Incoming(Packet::Publish(p)))) => self.unread.push(p),
                Ok(Ok(Event::Incoming(Packet::PubAck(_) | Packet::SubAck(_)))) => self.acks += 1,
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    eprintln!("test connection error (rumqttc retries): {e}");
                    self.last_error = Some(e.to_string());
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return done(self),
            }
        }
    }

    /// The payload of the next publish on `topic`, within [`PATIENCE`].
    pub fn next_publish(&mut self, topic: &str) -> Vec<u8> {
        let deadline = Instant::now() + PATIENCE;
        let arrived = self.poll_until(deadline, |inbox| inbox.unread.iter().any(|p| p.topic == topic));
        assert!(
            arrived,
            "nothing arrived on {topic} within {PATIENCE:?} (last connection error: {:?})",
            self.last_error
        );
        let at = self.unread.iter().position(|p| p.topic == topic).unwrap();
        self.unread.remove(at).payload.to_vec()
    }

    /// Asserts that nothing arrives on `topic` for `during`.
    pub fn assert_silent(&mut self, topic: &str, during: Duration) {
        let deadline = Instant::now() + during;
        self.poll_until(deadline, |inbox| inbox.unread.iter().any(|p| p.topic == topic));
        let heard: Vec<_> = self.unread.iter().filter(|p| p.topic == topic).collect();
        assert!(heard.is_empty(), "expected silence on {topic}, got {heard:?}");
    }

    /// Waits for the acknowledgement (PUBACK or SUBACK) of the request just
    /// made, on a client whose earlier requests were all acknowledged.
    pub fn acked(&mut self) {
        let wanted = self.acks + 1;
        let acked = self.poll_until(Instant::now() + PATIENCE, |inbox| inbox.acks >= wanted);
        assert!(
            acked,
            "no acknowledgement within {PATIENCE:?} (last connection error: {:?})",
            self.last_error
        );
    }
}

/// A plain test client: the options given, a 5 s keep-alive.
pub fn client(mut options: MqttOptions) -> (Client, Inbox) {
    options.set_keep_alive(Duration::from_secs(5));
    let (client, connection) = Client::new(options, 10);
    (client, Inbox::new(connection))
}

pub fn info() -> DaemonInfo {
    DaemonInfo {
        version: "0.1.0".into(),
        protocol: arcella_core::protocol::PROTOCOL_VERSION,
        fingerprint: "fp".into(),
        target: "x86_64".into(),
        board: "test-board".into(),
        data_dir: "/d".into(),
        uptime_secs: 1,
        modules: 0,
        interfaces: Vec::new(),
    }
}

/// A device that answers `Info`; anything else is a `BadRequest`.
struct InfoOnly(std::path::PathBuf);

impl Device for InfoOnly {
    fn answer(&self, _actor: &arcella_core::protocol::audit::Actor, request: Request) -> Result<Response, RemoteError> {
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
            health: vec![],
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

/// A device answering `Info`, with a fresh state directory.
pub fn info_device() -> Arc<dyn Device> {
    static COUNT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("arcella-mqtt-test-{}-{n}", std::process::id()));
    Arc::new(InfoOnly(dir))
}

/// No desired state to follow, nothing trusted.
pub fn no_fleet() -> FleetSettings {
    FleetSettings::default()
}

/// Operator `ops` waits for the device to be online, sends it `Info` and
/// checks the answer.
pub fn round_trip(operator: &Client, inbox: &mut Inbox, device: &str) {
    let topics = DeviceTopics::new(device).unwrap();
    operator.subscribe(topics.presence(), QoS::AtLeastOnce).unwrap();
    operator
        .subscribe(topics.reply("ops").unwrap(), QoS::AtLeastOnce)
        .unwrap();
    // Once the device is online, its command subscription is in place.
    assert_eq!(inbox.next_publish(&topics.presence()), b"online");
    let command = frame::encode(&RemoteCommand {
        id: 41,
        request: Request::Info,
        auth: None,
        artifact_signature: None,
    })
    .unwrap();
    operator
        .publish(topics.command("ops").unwrap(), QoS::AtLeastOnce, false, command)
        .unwrap();
    let reply = inbox.next_publish(&topics.reply("ops").unwrap());
    let answer: ServerMessage = frame::decode(&reply[LEN_PREFIX..]).unwrap();
    assert_eq!(
        answer,
        ServerMessage::Response {
            id: 41,
            result: Ok(Response::Info(info())),
        }
    );
}
