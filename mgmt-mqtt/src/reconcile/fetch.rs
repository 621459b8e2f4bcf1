//! Fetching one artifact from its retained chunks: subscribe to a small
//! window of the chunks still missing, write each to staging as it comes,
//! move the window on. Memory stays at a window of chunks whatever the
//! artifact's size; after a disconnect (or a stall) the outstanding chunks
//! are asked for again, and chunks already on disk never are.

use super::{Inbox, Input, Reconciler};
use crate::topics;
use arcella_core::daemon::uploads::Piece;
use arcella_core::digest;
use arcella_core::protocol::ErrorKind;
use arcella_core::protocol::fleet::{ArtifactRef, Step};
use rumqttc::QoS;
use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, Instant};

/// Chunks asked for at once.
pub const WINDOW: usize = 4;
/// No chunk for this long: ask for the outstanding ones again.
const STALL: Duration = Duration::from_secs(5);
/// Progress is published at most this often.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

/// Why a fetch ended without the artifact.
#[derive(Debug)]
pub enum FetchEnd {
    /// A newer desired state arrived; apply that instead.
    Superseded,
    /// The artifact cannot be had (damaged, too big, no space): the reason.
    Failed(String),
}

impl Reconciler {
    /// Stages `artifact` completely, or says why not.
    pub(super) fn fetch(&mut self, module: &str, artifact: &ArtifactRef, inbox: &Inbox) -> Result<(), FetchEnd> {
        if self.device.is_staged(&artifact.sha256) {
            return Ok(());
        }
        let sha_hex = digest::hex(&artifact.sha256);
        let mut queue: VecDeque<u64> = self
            .device
            .missing(&artifact.sha256)
            .unwrap_or_else(|| (0..artifact.chunks()).collect())
            .into();
        let mut outstanding = BTreeSet::new();
        let mut received = artifact.len - (queue.len() as u64 * u64::from(artifact.chunk_len)).min(artifact.len);
        let mut last_progress = Instant::now() - PROGRESS_EVERY;
        let mut last_chunk = Instant::now();
        let result = loop {
            while outstanding.len() < WINDOW
                && let Some(index) = queue.pop_front()
            {
                let _ = self
                    .client
                    .subscribe(topics::artifact_chunk(&sha_hex, index), QoS::AtLeastOnce);
                outstanding.insert(index);
            }
            if last_progress.elapsed() >= PROGRESS_EVERY {
                last_progress = Instant::now();
                self.progress(
                    module,
                    Step::Fetching {
                        received,
                        total: artifact.len,
                    },
                );
            }
            let input = match inbox.recv_timeout(STALL) {
                Ok(input) => input,
                // Stalled: ask again below.
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Input::Wake,
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break Err(FetchEnd::Superseded),
            };
            let stalled = last_chunk.elapsed() >= STALL;
            match input {
                Input::Chunk(chunk)
                    if chunk.sha256 == artifact.sha256 && outstanding.remove(&u64::from(chunk.index)) =>
                {
                    last_chunk = Instant::now();
                    let _ = self
                        .client
                        .unsubscribe(topics::artifact_chunk(&sha_hex, u64::from(chunk.index)));
                    let piece = Piece {
                        sha256: artifact.sha256,
                        total_len: artifact.len,
                        chunk_len: u64::from(artifact.chunk_len),
                        index: u64::from(chunk.index),
                        data: &chunk.data,
                    };
                    match self.device.stage(&piece) {
                        Ok((_, true)) => break Ok(()),
                        Ok((bytes, false)) => received = bytes,
                        Err(e) if e.kind == ErrorKind::InvalidArtifact => {
                            break Err(FetchEnd::Failed(format!(
                                "artifact {sha_hex} does not match its sha256 once received (tampered or damaged chunks); nothing installed: {}",
                                e.message
                            )));
                        }
                        Err(e) => break Err(FetchEnd::Failed(format!("artifact {sha_hex}: {}", e.message))),
                    }
                }
                other => {
                    let reconnected = self.serve(other);
                    if self.dirty {
                        break Err(FetchEnd::Superseded);
                    }
                    // Reconnected, or stalled: retained chunks come again
                    // on a fresh subscription.
                    if reconnected || stalled {
                        last_chunk = Instant::now();
                        for &index in &outstanding {
                            let topic = topics::artifact_chunk(&sha_hex, index);
                            let _ = self.client.unsubscribe(topic.clone());
                            let _ = self.client.subscribe(topic, QoS::AtLeastOnce);
                        }
                    }
                }
            }
        };
        for &index in &outstanding {
            let _ = self.client.unsubscribe(topics::artifact_chunk(&sha_hex, index));
        }
        result
    }
}
