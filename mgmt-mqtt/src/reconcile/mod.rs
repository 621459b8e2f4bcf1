//! Desired state: the device takes the retained documents of its group
//! and of itself, merges them (the device's entries win), and brings its
//! modules there with the same verbs an operator would use: install,
//! update (the A/B swap with its health window), remove, start, stop.
//! Progress and the outcome per module go to the retained `convergence`
//! topic. A document older than the one taken is ignored and reported as
//! stale; the same version again changes nothing.

mod apply;
mod fetch;
mod record;

pub use record::{Applied, Record};

use crate::device::Device;
use crate::topics::DeviceTopics;
use arcella_core::protocol::fleet::{ArtifactChunk, Convergence, DesiredDocument, Phase, StaleDocument, Step};
use arcella_core::signing::TrustPolicy;
use rumqttc::{Client, QoS};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, Mutex, PoisonError};

/// What the connection thread hands the device thread. The connection
/// thread never blocks on it (a full inbox drops a chunk, which is asked
/// for again, or turns a command away as busy), so the MQTT event loop
/// always keeps the connection alive.
#[derive(Debug)]
pub enum Input {
    Chunk(ArtifactChunk),
    /// A command frame from `operator`.
    Command {
        operator: String,
        payload: Vec<u8>,
    },
    /// Something changed in [`Shared`].
    Wake,
}

/// What must never be dropped, kept latest-wins beside the inbox: the
/// desired-state documents as they arrived, and whether the connection
/// was (re)made.
#[derive(Debug, Default)]
pub struct Shared {
    /// Raw documents by source: `None` the device's, `Some(group)`.
    documents: Mutex<BTreeMap<Option<String>, Vec<u8>>>,
    connected: AtomicBool,
}

pub type Inbox = Receiver<Input>;

/// Inputs waiting at once.
pub const INBOX_LEN: usize = 32;

/// The connection thread's end.
#[derive(Debug, Clone)]
pub struct Mailbox {
    tx: SyncSender<Input>,
    shared: Arc<Shared>,
}

impl Mailbox {
    pub fn new() -> (Self, Inbox, Arc<Shared>) {
        let (tx, rx) = std::sync::mpsc::sync_channel(INBOX_LEN);
        let shared = Arc::new(Shared::default());
        (
            Self {
                tx,
                shared: shared.clone(),
            },
            rx,
            shared,
        )
    }

    /// Hands over an input; false if the inbox is full.
    pub fn offer(&self, input: Input) -> bool {
        self.tx.try_send(input).is_ok()
    }

    pub fn document(&self, group: Option<String>, payload: Vec<u8>) {
        self.shared
            .documents
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(group, payload);
        let _ = self.tx.try_send(Input::Wake);
    }

    pub fn connected(&self) {
        self.shared.connected.store(true, Ordering::SeqCst);
        let _ = self.tx.try_send(Input::Wake);
    }
}

/// The reconciler's settings.
#[derive(Debug, Clone)]
pub struct FleetSettings {
    pub group: Option<String>,
    pub trust: TrustPolicy,
}

/// Brings the device to its desired state; runs on a thread of its own.
pub struct Reconciler {
    device: Arc<dyn Device>,
    client: Client,
    topics: DeviceTopics,
    settings: FleetSettings,
    shared: Arc<Shared>,
    dir: PathBuf,
    record: Record,
    status: Convergence,
    /// A document newer than what is being applied has been taken.
    dirty: bool,
}

impl std::fmt::Debug for Reconciler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reconciler")
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

impl Reconciler {
    pub fn new(
        device: Arc<dyn Device>,
        client: Client,
        topics: DeviceTopics,
        settings: FleetSettings,
        shared: Arc<Shared>,
    ) -> Self {
        let dir = device.state_dir();
        let mut record = Record::load(&dir);
        // A device moved to another group forgets the old group's document.
        if record.group.as_ref().map(|(name, _)| name) != settings.group.as_ref() {
            record.group = None;
            record.finished = false;
        }
        let status = Convergence {
            group: settings.group.clone(),
            group_version: record.group.as_ref().map(|(_, d)| d.version),
            device_version: record.device.as_ref().map(|d| d.version),
            ..Convergence::default()
        };
        let dirty =
            !record.finished && (record.group.is_some() || record.device.is_some() || !record.managed.is_empty());
        Self {
            device,
            client,
            topics,
            settings,
            shared,
            dir,
            record,
            status,
            dirty,
        }
    }

    /// Serves inputs until the connection thread goes.
    pub fn run(mut self, inbox: &Inbox) {
        loop {
            if self.dirty {
                self.dirty = false;
                self.apply(inbox);
                continue;
            }
            match inbox.recv() {
                Ok(input) => {
                    if self.serve(input) {
                        self.publish_status();
                    }
                }
                Err(_) => return,
            }
        }
    }

    /// Serves one input that is not a chunk being waited for: answers a
    /// command, takes new documents. Returns whether the connection was
    /// (re)made since last asked.
    fn serve(&mut self, input: Input) -> bool {
        match input {
            Input::Command { operator, payload } => self.answer_command(&operator, &payload),
            Input::Chunk(_) => {}
            Input::Wake => {
                let documents =
                    std::mem::take(&mut *self.shared.documents.lock().unwrap_or_else(PoisonError::into_inner));
                for (group, payload) in documents {
                    self.take_document(group, &payload);
                }
            }
        }
        self.shared.connected.swap(false, Ordering::SeqCst)
    }

    fn answer_command(&self, operator: &str, payload: &[u8]) {
        if let Ok(topic) = self.topics.reply(operator)
            && let Some(reply) = crate::agent::answer(payload, self.device.as_ref())
        {
            let _ = self.client.publish(topic, QoS::AtLeastOnce, false, reply);
        }
    }

    /// Takes a document if it is newer than the one held; returns whether
    /// it was (and the device must converge again).
    fn take_document(&mut self, group: Option<String>, payload: &[u8]) -> bool {
        if group.is_some() && group != self.settings.group {
            return false;
        }
        let source = group
            .as_ref()
            .map_or_else(|| "device".to_owned(), |g| format!("group {g}"));
        let document: DesiredDocument = match crate::wire::decode(payload) {
            Ok(document) => document,
            Err(e) => {
                // An empty retained message clears the topic: nothing to do.
                if !payload.is_empty() {
                    log::warn!("desired state from {source} is unreadable ({e}); ignored");
                }
                return false;
            }
        };
        let held = self.record.version_of(group.as_deref());
        match held {
            Some(held) if document.version < held => {
                log::warn!(
                    "desired state version {} from {source} is older than version {held}, already taken; ignored",
                    document.version
                );
                self.status.stale = Some(StaleDocument {
                    source,
                    version: document.version,
                    applied: held,
                });
                self.publish_status();
                false
            }
            Some(held) if document.version == held => false,
            _ => {
                log::info!("desired state version {} from {source} taken", document.version);
                match group {
                    Some(name) => {
                        self.status.group_version = Some(document.version);
                        self.record.group = Some((name, document));
                    }
                    None => {
                        self.status.device_version = Some(document.version);
                        self.record.device = Some(document);
                    }
                }
                self.record.finished = false;
                self.save();
                self.dirty = true;
                true
            }
        }
    }

    fn save(&self) {
        if let Err(e) = self.record.save(&self.dir) {
            log::error!("cannot save the fleet record in {}: {e}", self.dir.display());
        }
    }

    fn progress(&mut self, module: &str, step: Step) {
        match self.status.modules.iter_mut().find(|m| m.id == module) {
            Some(m) if m.step == step => return,
            Some(m) => m.step = step,
            None => self.status.modules.push(arcella_core::protocol::fleet::ModuleProgress {
                id: module.to_owned(),
                step,
            }),
        }
        self.publish_status();
    }

    fn set_phase(&mut self, phase: Phase) {
        self.status.phase = phase;
        self.publish_status();
    }

    fn publish_status(&self) {
        if let Ok(bytes) = crate::wire::encode(&self.status) {
            let _ = self
                .client
                .publish(self.topics.convergence(), QoS::AtLeastOnce, true, bytes);
        }
    }
}
