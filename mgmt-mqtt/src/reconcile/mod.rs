//! Desired state: the device takes the retained documents of its group
//! and of itself, merges them (the device's entries win), and brings its
//! modules there with the same verbs an operator would use: install,
//! update (the A/B swap with its health window), remove, start, stop.
//! Progress and a verdict per module (healthy, rolled back, failed,
//! drifted) go to the retained `convergence` topic; the documents applied,
//! as signed, to the retained `applied` topic. Documents are taken only
//! when signed whole by a trusted key, addressed to this device or its
//! group, and newer than the last one taken (`take.rs`).

mod apply;
mod fetch;
mod record;
mod take;
mod verdict;
mod watch;

pub use record::{Applied, Record, source_name};

use crate::device::Device;
use crate::gate::{Gate, GatePolicy};
use crate::topics::DeviceTopics;
use arcella_core::daemon::config::mqtt::DriftPolicy;
use arcella_core::protocol::fleet::{AppliedDocuments, ArtifactChunk, Convergence, Phase, Step};
use rumqttc::{Client, QoS};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

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

/// The reconciler's settings (from `[mqtt]`).
#[derive(Debug, Clone, Default)]
pub struct FleetSettings {
    pub group: Option<String>,
    /// Trusted keys and what remote requests and documents may do.
    pub gate: GatePolicy,
    pub drift: DriftPolicy,
    /// Publish the convergence in the JSON mirror too (`[mqtt] json`).
    pub json: bool,
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
    gate: Gate,
    /// Modules being watched: in their health window, or for drift.
    watched: BTreeMap<String, watch::Watch>,
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
        let gate = Gate::new(topics.device(), settings.gate.clone(), dir.clone());
        let mut record = Record::load(&dir);
        // A device moved to another group forgets the old group's document.
        if record.group.as_ref().map(|(name, _)| name) != settings.group.as_ref() {
            record.group = None;
            record.finished = false;
        }
        let status = Convergence {
            group: settings.group.clone(),
            group_document: settings.group.as_deref().and_then(|g| record.taken_from(Some(g))),
            device_document: record.taken_from(None),
            ..Convergence::default()
        };
        // Converge at start whenever there is something to look after: an
        // unfinished pass resumes, a finished one is judged again (health,
        // drift) from what runs now.
        let dirty = record.group.is_some() || record.device.is_some() || !record.managed.is_empty();
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
            gate,
            watched: BTreeMap::new(),
        }
    }

    /// Serves inputs until the connection thread goes; between inputs,
    /// watches the modules it applied (health windows, drift).
    pub fn run(mut self, inbox: &Inbox) {
        let mut next_watch: Option<Instant> = None;
        loop {
            if self.dirty {
                self.dirty = false;
                self.apply(inbox);
                next_watch = None;
                continue;
            }
            // Watched modules are looked at on schedule, however busy the
            // inbox is (a stream of inputs must not starve a verdict).
            let input = match self.watch_interval() {
                Some(every) => {
                    let due = *next_watch.get_or_insert_with(|| Instant::now() + every);
                    match inbox.recv_timeout(due.saturating_duration_since(Instant::now())) {
                        Ok(input) => Some(input),
                        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => None,
                        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
                    }
                }
                None => match inbox.recv() {
                    Ok(input) => Some(input),
                    Err(_) => return,
                },
            };
            if let Some(input) = input
                && self.serve(input)
            {
                self.publish_status();
                self.publish_applied();
            }
            if next_watch.is_some_and(|due| Instant::now() >= due) {
                next_watch = None;
                self.watch();
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

    fn answer_command(&mut self, operator: &str, payload: &[u8]) {
        if let Ok(topic) = self.topics.reply(operator)
            && let Some(reply) = crate::agent::answer(payload, operator, &mut self.gate, self.device.as_ref())
        {
            let _ = self.client.publish(topic, QoS::AtLeastOnce, false, reply);
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
        if self.status.phase != phase {
            self.status.phase = phase;
            self.publish_status();
        }
    }

    /// The phase the modules' steps add up to.
    fn settle_phase(&mut self) {
        let steps = || self.status.modules.iter().map(|m| &m.step);
        let phase = if steps().any(|s| !s.is_verdict()) {
            Phase::Applying
        } else if steps().all(Step::is_success) {
            Phase::Converged
        } else {
            Phase::Failed
        };
        self.set_phase(phase);
    }

    fn publish_status(&self) {
        if let Ok(bytes) = crate::wire::encode(&self.status) {
            let _ = self
                .client
                .publish(self.topics.convergence(), QoS::AtLeastOnce, true, bytes);
        }
        if self.settings.json {
            let view = crate::json::views::ConvergenceView::new(self.topics.device(), &self.status);
            crate::json::publish(&self.client, &self.topics, crate::json::CONVERGENCE, &view);
        }
    }

    /// The documents taken, as signed, for operators rebuilding a
    /// target's desired state.
    fn publish_applied(&self) {
        let applied = AppliedDocuments {
            device: self.record.device.clone(),
            group: self.record.group.as_ref().map(|(_, d)| d.clone()),
        };
        if applied == AppliedDocuments::default() {
            return;
        }
        if let Ok(bytes) = crate::wire::encode(&applied) {
            let _ = self
                .client
                .publish(self.topics.applied(), QoS::AtLeastOnce, true, bytes);
        }
    }
}

/// How often modules are looked at while one is in its health window.
const WINDOW_TICK: Duration = Duration::from_millis(500);
/// How often settled modules are looked at for drift.
const DRIFT_TICK: Duration = Duration::from_secs(5);
