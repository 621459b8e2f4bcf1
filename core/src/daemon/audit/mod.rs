//! The audit trail: who changed what (installs, updates, rollbacks,
//! removals, config and key-value writes by operators; the uid on the
//! socket or the operator over MQTT), every capability denial, and every
//! start, exit, crash and rollback.
//!
//! Recording never blocks: records go into a bounded queue that one task
//! drains to disk ([`file`]); when the queue is full the record is
//! dropped and counted, and the next write says how many were lost.

pub mod file;

use crate::protocol::audit::{Actor, AuditRecord};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// Records waiting for the disk before new ones are dropped.
pub const QUEUE: usize = 1024;
/// The default size cap of the trail's current file (`[audit] max_size`);
/// with the rotated one, the trail keeps at most twice this.
pub const DEFAULT_MAX_SIZE: u64 = 1024 * 1024;
/// The most records one `arcella audit` reply carries.
pub const MAX_REPLY_RECORDS: usize = 128;

/// The subdirectory of the data dir holding the trail.
pub const DIR: &str = "audit";

/// Handle to the trail; cheap to clone.
#[derive(Debug, Clone)]
pub struct Audit {
    queue: async_channel::Sender<AuditRecord>,
    dropped: Arc<AtomicU64>,
    dir: PathBuf,
}

/// Why the trail could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot open the audit trail in {dir}: {source}")]
pub struct AuditError {
    dir: String,
    #[source]
    source: std::io::Error,
}

impl Audit {
    /// Opens the trail under `data_dir` and starts its writer on
    /// `executor` (disk writes go to the blocking pool).
    pub fn start(data_dir: &Path, max_size: u64, executor: &smol::Executor<'static>) -> Result<Self, AuditError> {
        let dir = data_dir.join(DIR);
        let file = file::TrailFile::open(&dir, max_size).map_err(|source| AuditError {
            dir: dir.display().to_string(),
            source,
        })?;
        let (queue, pending) = async_channel::bounded(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        executor
            .spawn(write_loop(Arc::new(Mutex::new(file)), pending, dropped.clone()))
            .detach();
        Ok(Self { queue, dropped, dir })
    }

    /// Queues a record; never blocks. A full queue drops it (counted).
    pub fn record(&self, record: AuditRecord) {
        if self.queue.try_send(record).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Shorthand: `actor` did `action` to `module`, ending in `outcome`.
    pub fn note(&self, actor: Actor, action: &str, module: Option<&str>, outcome: Result<(), &str>, detail: &str) {
        let record = AuditRecord::new(actor, action, module).detail(detail);
        self.record(match outcome {
            Ok(()) => record,
            Err(e) => record.outcome(e),
        });
    }

    /// The last `limit` records (at most [`MAX_REPLY_RECORDS`]) about
    /// `module` (or all) since `since_ms`, oldest first. Blocking.
    pub fn query(
        &self,
        module: Option<&str>,
        since_ms: Option<u64>,
        limit: usize,
    ) -> std::io::Result<Vec<AuditRecord>> {
        let keep = |r: &AuditRecord| {
            module.is_none_or(|m| r.module.as_deref() == Some(m)) && since_ms.is_none_or(|since| r.at_ms >= since)
        };
        file::read(&self.dir, keep, limit.clamp(1, MAX_REPLY_RECORDS))
    }

    /// Records dropped because the queue was full, since the start.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

async fn write_loop(
    file: Arc<Mutex<file::TrailFile>>,
    pending: async_channel::Receiver<AuditRecord>,
    dropped: Arc<AtomicU64>,
) {
    let mut reported = 0u64;
    let mut failing = false;
    while let Ok(first) = pending.recv().await {
        let mut batch = vec![first];
        while batch.len() < 256
            && let Ok(next) = pending.try_recv()
        {
            batch.push(next);
        }
        let lost = dropped.load(Ordering::Relaxed);
        if lost > reported {
            batch.push(
                AuditRecord::new(Actor::Daemon, "audit-dropped", None)
                    .outcome("lost")
                    .detail(format!(
                        "{} record(s) dropped: the audit queue was full",
                        lost - reported
                    )),
            );
            reported = lost;
        }
        let lines: Vec<String> = batch
            .iter()
            .filter_map(|record| serde_json::to_string(record).ok())
            .collect();
        let file = file.clone();
        let written =
            crate::offload::offload(move || file.lock().unwrap_or_else(PoisonError::into_inner).append(&lines)).await;
        match (written, failing) {
            (Err(e), false) => {
                log::error!("cannot write the audit trail: {e}; records are lost until it can");
                failing = true;
            }
            (Ok(()), true) => {
                log::info!("the audit trail is written again");
                failing = false;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests;
