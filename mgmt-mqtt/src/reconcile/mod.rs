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
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender};

/// What the connection thread hands the reconciler.
#[derive(Debug)]
pub enum Input {
    /// A desired-state document: the group's (`Some(name)`) or the device's.
    Desired {
        group: Option<String>,
        payload: Vec<u8>,
    },
    Chunk(ArtifactChunk),
    /// (Re)connected to the broker.
    Connected,
}

pub type Inbox = Receiver<Input>;
pub type Mailbox = SyncSender<Input>;

/// Inputs waiting at once; chunks beyond it are dropped (and asked again).
pub const INBOX_LEN: usize = 32;

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
    pub fn new(device: Arc<dyn Device>, client: Client, topics: DeviceTopics, settings: FleetSettings) -> Self {
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
                Ok(Input::Desired { group, payload }) => {
                    self.take_document(group, &payload);
                }
                Ok(Input::Connected) => self.publish_status(),
                Ok(Input::Chunk(_)) => {}
                Err(_) => return,
            }
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
