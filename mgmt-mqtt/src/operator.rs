//! The operator's side: one connection to the broker from which to talk
//! to devices (the socket's verbs, request by request), see the fleet
//! (retained presence, state and convergence), publish artifacts in
//! retained chunks and desired-state documents.

use crate::topics::{self, BadName, DeviceTopics, ROOT};
use crate::wire;
use arcella_core::daemon::uploads::{MAX_CHUNK_LEN, MIN_CHUNK_LEN};
use arcella_core::digest;
use arcella_core::protocol::fleet::{
    AppliedDocuments, ArtifactChunk, ArtifactRef, ArtifactSignature, Convergence, DocumentTarget, RemoteCommand,
    SignedDocument,
};
use arcella_core::protocol::frame::FrameError;
use arcella_core::protocol::{DeviceReport, RemoteError, Request, Response, ServerMessage};
use arcella_core::signing;
use ed25519_dalek::SigningKey;
use rumqttc::{Client, MqttOptions, Packet, QoS};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Default chunk size for artifacts.
pub const DEFAULT_CHUNK_LEN: u32 = 64 * 1024;

/// The longest [`Operator::retained`] (and so `devices`, `desired`)
/// gathers, however chatty the topics it listens to.
pub const GATHER_CAP: Duration = Duration::from_secs(3);

/// Why an operator action failed.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    #[error("cannot reach the broker: {0}")]
    Connect(String),
    #[error("the connection to the broker is gone")]
    Disconnected,
    #[error("no answer from device `{device}` within {secs}s (offline, or busy)")]
    Timeout { device: String, secs: u64 },
    #[error("the broker did not acknowledge {0} publishes in time")]
    Unacknowledged(u64),
    #[error(transparent)]
    Name(#[from] BadName),
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error(transparent)]
    Remote(#[from] RemoteError),
    #[error("chunk size {0} is out of range ({MIN_CHUNK_LEN}..={MAX_CHUNK_LEN} bytes)")]
    ChunkLen(u32),
    #[error(
        "the desired state of {0} is at version {1}, and no version follows it; devices refuse such versions anyway, so this document is not one of your operators'"
    )]
    VersionExhausted(String, u64),
    #[error(
        "devices of {target} already applied version {applied}, signed by key {key}, which this deploy does not build on; give that key's .pub with --trust (key rotation, another operator) so the next document keeps what they run"
    )]
    BehindDevices { target: String, applied: u64, key: String },
    #[error("nothing to deploy: no artifact was built")]
    NothingToDeploy,
    #[error(
        "the broker holds {found} of the {total} chunks of artifact {sha256} (purged, or the broker lost its retained messages): deploy the module's .wasm again"
    )]
    ArtifactIncomplete { sha256: String, found: u64, total: u64 },
    #[error("the chunks of artifact {0} on the broker do not hash to it (tampered): deploy the module's .wasm again")]
    ArtifactCorrupt(String),
}

/// What a desired state is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Device(String),
    Group(String),
}

impl Target {
    /// The target as a document names it.
    pub fn document_target(&self) -> DocumentTarget {
        match self {
            Target::Device(id) => DocumentTarget::Device(id.clone()),
            Target::Group(name) => DocumentTarget::Group(name.clone()),
        }
    }

    pub fn desired_topic(&self) -> Result<String, BadName> {
        match self {
            Target::Device(id) => Ok(DeviceTopics::new(id)?.desired()),
            Target::Group(name) => topics::group_desired(name),
        }
    }
}

/// One device as the broker's retained messages describe it.
#[derive(Debug, Clone, Default)]
pub struct DeviceView {
    pub online: bool,
    pub report: Option<DeviceReport>,
    pub convergence: Option<Convergence>,
}

/// A connection to the broker for an operator.
pub struct Operator {
    client: Client,
    subscriptions: Arc<Mutex<BTreeSet<String>>>,
    name: String,
    incoming: Receiver<rumqttc::Publish>,
    acks: Arc<AtomicU64>,
    published: AtomicU64,
    next_id: std::sync::atomic::AtomicU32,
    /// Signs every request sent with [`Operator::call`].
    key: Option<SigningKey>,
    /// Told how each artifact's publish goes ([`Operator::watch_publishes`]).
    watcher: Mutex<Option<PublishWatcher>>,
}

/// Told, during the publish of an artifact's chunks, its sha256, the bytes
/// the broker has acknowledged so far and the total: the CLI draws a
/// progress line with it.
pub type PublishWatcher = Box<dyn FnMut(&[u8; 32], u64, u64) + Send>;

impl Drop for Operator {
    /// Says goodbye, so that the connection thread ends too.
    fn drop(&mut self) {
        let _ = self.client.try_disconnect();
    }
}

impl std::fmt::Debug for Operator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Operator")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Operator {
    /// Connects as operator `name` (a clean session; it keeps nothing).
    pub fn connect(mut options: MqttOptions, name: &str) -> Result<Self, OperatorError> {
        topics::checked_name(name)?;
        options
            .set_clean_session(true)
            .set_max_packet_size(512 * 1024, 512 * 1024);
        let (client, mut connection) = Client::new(options, 256);
        connection
            .eventloop
            .set_network_options(crate::broker::network_options());
        let (tx, incoming) = std::sync::mpsc::sync_channel(4096);
        let (ready_tx, ready) = std::sync::mpsc::sync_channel(1);
        let acks = Arc::new(AtomicU64::new(0));
        let counter = acks.clone();
        let subscriptions: Arc<Mutex<BTreeSet<String>>> = Arc::default();
        let resubscribe = (client.clone(), subscriptions.clone());
        std::thread::Builder::new()
            .name("arcella-operator".into())
            .spawn(move || {
                for event in connection.iter() {
                    match event {
                        Ok(rumqttc::Event::Incoming(Packet::ConnAck(_))) => {
                            // A clean session forgets subscriptions: make
                            // them again after a reconnect.
                            let filters = resubscribe.1.lock().unwrap_or_else(PoisonError::into_inner).clone();
                            for filter in filters {
                                let _ = resubscribe.0.try_subscribe(filter, QoS::AtLeastOnce);
                            }
                            let _ = ready_tx.try_send(Ok(()));
                        }
                        // Said goodbye, or every handle is gone: done.
                        Ok(rumqttc::Event::Outgoing(rumqttc::Outgoing::Disconnect))
                        | Err(rumqttc::ConnectionError::RequestsDone) => return,
                        Ok(rumqttc::Event::Incoming(Packet::Publish(p))) => {
                            if tx.send(p).is_err() {
                                return;
                            }
                        }
                        Ok(rumqttc::Event::Incoming(Packet::PubAck(_))) => {
                            counter.fetch_add(1, Ordering::SeqCst);
                        }
                        Ok(_) => {}
                        Err(e) => {
                            if ready_tx.try_send(Err(e.to_string())).is_err() {
                                std::thread::sleep(Duration::from_millis(200));
                            }
                        }
                    }
                }
            })
            .map_err(|e| OperatorError::Connect(e.to_string()))?;
        match ready.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(OperatorError::Connect(e)),
            Err(_) => return Err(OperatorError::Connect("no answer within 10s".into())),
        }
        Ok(Self {
            client,
            subscriptions,
            name: name.to_owned(),
            incoming,
            acks,
            published: AtomicU64::new(0),
            next_id: std::sync::atomic::AtomicU32::new(1),
            key: None,
            watcher: Mutex::new(None),
        })
    }

    /// Signs every request from now on with `key` (operate and change
    /// requests must be signed by a key the device trusts).
    pub fn sign_with(&mut self, key: SigningKey) {
        self.key = Some(key);
    }

    /// The signature of an artifact with this sha256 by the key set with
    /// [`Operator::sign_with`], if any.
    pub fn sign_artifact(&self, sha256: &[u8; 32]) -> Option<ArtifactSignature> {
        self.key.as_ref().map(|key| signing::sign(key, sha256))
    }

    fn publish(&self, topic: String, retain: bool, payload: Vec<u8>) -> Result<(), OperatorError> {
        self.client
            .publish(topic, QoS::AtLeastOnce, retain, payload)
            .map_err(|_| OperatorError::Disconnected)?;
        self.published.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    /// Publishes any payload (QoS 1) and waits for the broker: for tools
    /// and tests that need to say something the typed calls cannot.
    pub fn publish_raw(&self, topic: &str, retain: bool, payload: Vec<u8>) -> Result<(), OperatorError> {
        self.publish(topic.to_owned(), retain, payload)?;
        self.flush(Duration::from_secs(10))
    }

    fn subscribe(&self, filter: String) -> Result<(), OperatorError> {
        self.subscriptions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(filter.clone());
        self.client
            .subscribe(filter, QoS::AtLeastOnce)
            .map_err(|_| OperatorError::Disconnected)
    }

    /// Subscribes to `filter` (kept across reconnects), for
    /// [`Operator::next_publish`].
    pub fn listen(&self, filter: &str) -> Result<(), OperatorError> {
        self.subscribe(filter.to_owned())
    }

    /// Reports every artifact publish from now on to `watcher` (bytes
    /// acknowledged by the broker, not bytes queued: rumqttc queues
    /// hundreds of chunks ahead of the network).
    pub fn watch_publishes(&mut self, watcher: PublishWatcher) {
        *self.watcher.lock().unwrap_or_else(PoisonError::into_inner) = Some(watcher);
    }

    /// Waits until the broker has acknowledged every publish so far.
    pub fn flush(&self, timeout: Duration) -> Result<(), OperatorError> {
        self.flush_with(timeout, || {})
    }

    /// [`Operator::flush`], calling `waiting` at every look at the acks.
    fn flush_with(&self, timeout: Duration, mut waiting: impl FnMut()) -> Result<(), OperatorError> {
        let deadline = Instant::now() + timeout;
        loop {
            waiting();
            let missing = self
                .published
                .load(Ordering::SeqCst)
                .saturating_sub(self.acks.load(Ordering::SeqCst));
            if missing == 0 {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(OperatorError::Unacknowledged(missing));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The next incoming publish, or `None` at the deadline.
    pub fn next_publish(&self, deadline: Instant) -> Result<Option<rumqttc::Publish>, OperatorError> {
        match self
            .incoming
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            Ok(p) => Ok(Some(p)),
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => Err(OperatorError::Disconnected),
        }
    }

    /// Sends one request to `device` and waits for its answer.
    pub fn call(&self, device: &str, request: Request, timeout: Duration) -> Result<Response, OperatorError> {
        self.call_with(device, request, None, timeout)
    }

    /// [`Operator::call`], with the signature of the artifact an
    /// `Install`/`Update` refers to.
    pub fn call_with(
        &self,
        device: &str,
        request: Request,
        artifact_signature: Option<ArtifactSignature>,
        timeout: Duration,
    ) -> Result<Response, OperatorError> {
        let topics = DeviceTopics::new(device)?;
        let reply = topics.reply(&self.name)?;
        self.subscribe(reply.clone())?;
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        let mut command = RemoteCommand {
            id,
            request,
            auth: None,
            artifact_signature,
        };
        if let Some(key) = &self.key {
            signing::request::sign(key, device, &self.name, signing::request::next_counter(), &mut command);
        }
        self.publish(topics.command(&self.name)?, false, wire::encode(&command)?)?;
        let deadline = Instant::now() + timeout;
        while let Some(publish) = self.next_publish(deadline)? {
            if publish.topic != reply {
                continue;
            }
            if let Ok(ServerMessage::Response { id: got, result }) = wire::decode(&publish.payload)
                && got == id
            {
                return Ok(result?);
            }
        }
        Err(OperatorError::Timeout {
            device: device.to_owned(),
            secs: timeout.as_secs(),
        })
    }

    /// The messages under `filter`, retained and live, gathered until no
    /// retained one came for `quiet` (the broker sends retained ones right
    /// after SUBACK, with the retain flag set), and for [`GATHER_CAP`] at
    /// most, in the order they came.
    pub fn retained(&self, filter: &str, quiet: Duration) -> Result<Vec<(String, Vec<u8>)>, OperatorError> {
        self.subscribe(filter.to_owned())?;
        let cap = Instant::now() + GATHER_CAP;
        let mut quiet_until = Instant::now() + quiet;
        let mut found = Vec::new();
        loop {
            // At the quiet deadline, what is already queued (a backlog of
            // live messages ahead of the retained ones) is still read.
            let p = match self.next_publish(quiet_until.min(cap))? {
                Some(p) => p,
                None => match self.incoming.try_recv() {
                    Ok(p) if Instant::now() < cap => p,
                    _ => break,
                },
            };
            if matches(filter, &p.topic) {
                // Only retained ones say more may follow: live ones (a
                // chatty `events` topic) would keep this waiting forever.
                if p.retain {
                    quiet_until = Instant::now() + quiet;
                }
                // Live messages that arrive meanwhile are newer still: keep them.
                found.push((p.topic.clone(), p.payload.to_vec()));
            }
        }
        self.subscriptions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(filter);
        let _ = self.client.unsubscribe(filter.to_owned());
        Ok(found)
    }

    /// Every device that ever reported, by id.
    pub fn devices(&self, quiet: Duration) -> Result<BTreeMap<String, DeviceView>, OperatorError> {
        let mut devices: BTreeMap<String, DeviceView> = BTreeMap::new();
        for (topic, payload) in self.retained(&format!("{ROOT}/+/+"), quiet)? {
            note(&mut devices, &topic, &payload);
        }
        Ok(devices)
    }

    /// Publishes an artifact as retained chunks (so a device that is
    /// offline now fetches them when it is back); waits for the broker.
    pub fn publish_artifact(&self, bytes: &[u8], chunk_len: u32) -> Result<ArtifactRef, OperatorError> {
        if !(MIN_CHUNK_LEN..=MAX_CHUNK_LEN).contains(&u64::from(chunk_len)) {
            return Err(OperatorError::ChunkLen(chunk_len));
        }
        let sha256 = digest::sha256(bytes);
        let artifact = ArtifactRef {
            sha256,
            len: bytes.len() as u64,
            chunk_len,
            signature: None,
        };
        // The description first: `fleet purge` finds chunks through it.
        self.publish(
            topics::artifact_meta(&digest::hex(&sha256)),
            true,
            wire::encode(&artifact)?,
        )?;
        self.publish_chunks(sha256, bytes, chunk_len)?;
        Ok(artifact)
    }

    /// Publishes `bytes` as the chunks of the artifact named `sha256`
    /// (which they should hash to: devices check) and waits for the broker.
    pub fn publish_chunks(&self, sha256: [u8; 32], bytes: &[u8], chunk_len: u32) -> Result<(), OperatorError> {
        let hex = digest::hex(&sha256);
        let total = bytes.len() as u64;
        let mut watcher = self.watcher.lock().unwrap_or_else(PoisonError::into_inner);
        // Acks past the publishes made before the first chunk count as
        // chunks (an earlier publish acked late makes this count low,
        // never high).
        let before = self.published.load(Ordering::SeqCst);
        let mut report = || {
            if let Some(watch) = watcher.as_mut() {
                let acked = self.acks.load(Ordering::SeqCst).saturating_sub(before);
                watch(&sha256, acked.saturating_mul(u64::from(chunk_len)).min(total), total);
            }
        };
        for (index, data) in bytes.chunks(chunk_len as usize).enumerate() {
            let chunk = ArtifactChunk {
                sha256,
                index: index as u32,
                data: data.to_vec(),
            };
            self.publish(topics::artifact_chunk(&hex, index as u64), true, wire::encode(&chunk)?)?;
            report();
        }
        self.flush_with(Duration::from_secs(60), &mut report)
    }

    /// An artifact's bytes, from its retained chunks, checked against its
    /// sha256.
    pub fn fetch_artifact(&self, artifact: &ArtifactRef) -> Result<Vec<u8>, OperatorError> {
        let hex = digest::hex(&artifact.sha256);
        let total = artifact.chunks();
        let mut chunks: Vec<Option<Vec<u8>>> = vec![None; usize::try_from(total).unwrap_or(usize::MAX)];
        for (_, payload) in self.retained(&format!("{ROOT}/artifacts/{hex}/+"), Duration::from_millis(500))? {
            let Ok(chunk) = wire::decode::<ArtifactChunk>(&payload) else {
                continue; // the meta, or garbage
            };
            if chunk.sha256 == artifact.sha256
                && let Some(slot) = chunks.get_mut(chunk.index as usize)
            {
                *slot = Some(chunk.data);
            }
        }
        let found = chunks.iter().filter(|c| c.is_some()).count() as u64;
        if found < total {
            return Err(OperatorError::ArtifactIncomplete {
                sha256: hex,
                found,
                total,
            });
        }
        let bytes: Vec<u8> = chunks.into_iter().flatten().flatten().collect();
        if digest::sha256(&bytes) != artifact.sha256 {
            return Err(OperatorError::ArtifactCorrupt(hex));
        }
        Ok(bytes)
    }

    /// Clears an artifact's retained chunks (and its description) from
    /// the broker.
    pub fn purge_artifact(&self, artifact: &ArtifactRef) -> Result<(), OperatorError> {
        let hex = digest::hex(&artifact.sha256);
        for index in 0..artifact.chunks() {
            self.publish(topics::artifact_chunk(&hex, index), true, Vec::new())?;
        }
        self.publish(topics::artifact_meta(&hex), true, Vec::new())?;
        self.flush(Duration::from_secs(30))
    }

    /// Every artifact described on the broker (`…/artifacts/+/meta`).
    pub fn artifacts(&self) -> Result<Vec<ArtifactRef>, OperatorError> {
        let found = self.retained(&format!("{ROOT}/artifacts/+/meta"), Duration::from_millis(500))?;
        Ok(found.into_iter().filter_map(|(_, p)| wire::decode(&p).ok()).collect())
    }

    /// The desired-state document a target has now (retained), if any.
    pub fn desired(&self, target: &Target) -> Result<Option<SignedDocument>, OperatorError> {
        let topic = target.desired_topic()?;
        let found = self.retained(&topic, Duration::from_millis(500))?;
        Ok(found.into_iter().find_map(|(_, payload)| wire::decode(&payload).ok()))
    }

    /// Every desired-state document on the broker, retained, by topic.
    pub fn all_desired(&self) -> Result<Vec<SignedDocument>, OperatorError> {
        let mut found = self.retained(&format!("{ROOT}/+/desired"), Duration::from_millis(500))?;
        found.extend(self.retained(&format!("{ROOT}/group/+/desired"), Duration::from_millis(500))?);
        Ok(found.into_iter().filter_map(|(_, p)| wire::decode(&p).ok()).collect())
    }

    /// The documents devices report they applied (retained `…/applied`).
    pub fn applied(&self) -> Result<Vec<SignedDocument>, OperatorError> {
        let found = self.retained(&format!("{ROOT}/+/applied"), Duration::from_millis(500))?;
        Ok(found
            .into_iter()
            .filter_map(|(_, p)| wire::decode::<AppliedDocuments>(&p).ok())
            .flat_map(|a| a.device.into_iter().chain(a.group))
            .collect())
    }

    /// Publishes a target's desired-state document (retained).
    pub fn publish_desired(&self, target: &Target, document: &SignedDocument) -> Result<(), OperatorError> {
        self.publish(target.desired_topic()?, true, wire::encode(document)?)?;
        self.flush(Duration::from_secs(10))
    }

    /// Subscribes to every device's presence and convergence, for
    /// [`Operator::next_publish`].
    pub fn watch_fleet(&self) -> Result<(), OperatorError> {
        fleet_filters()
            .into_iter()
            .try_for_each(|filter| self.subscribe(filter))
    }

    /// Subscribes to [`Operator::watch_fleet`]'s topics afresh, so the
    /// broker sends their retained messages again: what a busy broker
    /// dropped on the way (its per-client queue is bounded) comes back.
    pub fn refresh_fleet(&self) -> Result<(), OperatorError> {
        for filter in fleet_filters() {
            let _ = self.client.unsubscribe(filter.clone());
            self.client
                .subscribe(filter, QoS::AtLeastOnce)
                .map_err(|_| OperatorError::Disconnected)?;
        }
        Ok(())
    }
}

/// What a follow of the fleet subscribes to: every device's presence and
/// convergence.
fn fleet_filters() -> [String; 2] {
    [format!("{ROOT}/+/presence"), format!("{ROOT}/+/convergence")]
}

/// Takes what a device published on `arcella/v1/<device>/<kind>` into
/// the fleet's view of it; other topics are left alone.
pub(crate) fn note(fleet: &mut BTreeMap<String, DeviceView>, topic: &str, payload: &[u8]) {
    let mut parts = topic.split('/').skip(2);
    let (Some(id), Some(kind), None) = (parts.next(), parts.next(), parts.next()) else {
        return;
    };
    if id == "group" || id == "artifacts" {
        return;
    }
    let view = fleet.entry(id.to_owned()).or_default();
    match kind {
        "presence" => view.online = payload == b"online",
        "state" => view.report = wire::decode(payload).ok(),
        "convergence" => view.convergence = wire::decode(payload).ok(),
        _ => {}
    }
}

/// Whether an MQTT topic matches a filter (`+` and a final `#`).
pub fn matches(filter: &str, topic: &str) -> bool {
    let mut topic_levels = topic.split('/');
    for level in filter.split('/') {
        match (level, topic_levels.next()) {
            ("#", _) => return true,
            ("+", Some(_)) => {}
            (l, Some(t)) if l == t => {}
            _ => return false,
        }
    }
    topic_levels.next().is_none()
}

#[cfg(test)]
mod tests {
    #[test]
    fn topic_filters_match_as_mqtt_says() {
        use super::matches;
        assert!(matches("a/+/c", "a/b/c"));
        assert!(!matches("a/+/c", "a/b/c/d"));
        assert!(matches("a/#", "a/b/c"));
        assert!(!matches("a/b", "a/c"));
        assert!(matches("arcella/v1/+/+", "arcella/v1/gw/state"));
    }
}
