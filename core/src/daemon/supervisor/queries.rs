//! Read-only views: list, status, logs, inspect, info.

use super::{Slot, Supervisor, not_found};
use crate::daemon::interface;
use crate::digest;
use crate::protocol::{
    DaemonInfo, Isolation, LogLine, ModuleInspect, ModuleKind, ModuleStatus, ModuleSummary, PROTOCOL_VERSION,
    RemoteError, WorkerHost,
};

/// Bytes of log text one `logs` answer carries at most (a frame is 256 KiB).
const LOG_REPLY_BUDGET: usize = 192 * 1024;

/// The most modules a daemon holds: `list` (and a fleet report) carries a
/// summary of each in one frame, and each summary is bounded below.
pub const MAX_MODULES: usize = 1000;
/// Bytes of a failure's reason a summary carries; `status` has it whole.
pub const SUMMARY_REASON_LEN: usize = 96;

impl Supervisor {
    /// Every module, each summary bounded so that [`MAX_MODULES`] of them
    /// fit one frame (`status` has the whole of each).
    pub fn list(&self) -> Vec<ModuleSummary> {
        self.lock()
            .modules
            .values()
            .map(|slot| bounded(summarize(slot)))
            .collect()
    }

    pub fn summary(&self, id: &str) -> Result<ModuleSummary, RemoteError> {
        self.lock().modules.get(id).map(summarize).ok_or_else(|| not_found(id))
    }

    pub fn status(&self, id: &str) -> Result<ModuleStatus, RemoteError> {
        let mut status = self.status_locked(id)?;
        // The artifact's header, read outside the lock.
        status.engine = self
            .inner
            .store
            .header(&status.artifact)
            .ok()
            .map(|h| h.fingerprint.to_string());
        Ok(status)
    }

    fn status_locked(&self, id: &str) -> Result<ModuleStatus, RemoteError> {
        let state = self.lock();
        let slot = state.modules.get(id).ok_or_else(|| not_found(id))?;
        Ok(ModuleStatus {
            summary: summarize(slot),
            desired: slot.record.desired,
            artifact: slot.record.current.artifact.clone(),
            previous_version: slot.record.previous.as_ref().map(|p| p.version.clone()),
            restarts: slot.restarts,
            last_exit: slot.last_exit,
            last_error: slot.last_error.clone(),
            started_at: slot.started_at,
            worker: slot.host.as_ref().map(|host| WorkerHost {
                group: host.group.clone(),
                pid: host.pid,
                resident_bytes: crate::sys::process::resident_bytes(host.pid).unwrap_or(0),
            }),
            last_update: slot.record.last_update.clone(),
            messaging: self.inner.bus.stats(id),
            engine: None,
        })
    }

    /// The last `tail` lines (0: all kept), newest kept when they would
    /// not all fit one protocol frame.
    pub fn logs(&self, id: &str, tail: u32) -> Result<Vec<LogLine>, RemoteError> {
        let state = self.lock();
        let slot = state.modules.get(id).ok_or_else(|| not_found(id))?;
        let mut lines = slot.logs.tail(tail as usize);
        let mut budget = LOG_REPLY_BUDGET;
        let keep = lines
            .iter()
            .rev()
            .take_while(|line| {
                let cost = line.text.len() + line.module.len() + 16;
                budget = budget.saturating_sub(cost);
                budget > 0
            })
            .count();
        lines.drain(..lines.len() - keep);
        Ok(lines)
    }

    pub fn inspect(&self, id: &str) -> Result<ModuleInspect, RemoteError> {
        let (artifact_id, program) = {
            let state = self.lock();
            let slot = state.modules.get(id).ok_or_else(|| not_found(id))?;
            (
                slot.record.current.artifact.clone(),
                slot.loaded.as_ref().map(|l| l.program.clone()),
            )
        };
        let header = self
            .inner
            .store
            .header(&artifact_id)
            .map_err(|e| super::internal("reading the artifact", e))?;
        let (exports, imports) = match program {
            Some(program) => {
                let described = interface::describe(&program, &header.source_name);
                (described.exports, described.imports)
            }
            None => (Vec::new(), Vec::new()),
        };
        Ok(ModuleInspect {
            id: id.to_owned(),
            artifact_kind: header.kind.to_string(),
            fingerprint: header.fingerprint.to_string(),
            code_sha256: digest::hex(&header.code_sha256),
            source_sha256: digest::hex(&header.source_sha256),
            exports,
            imports,
        })
    }

    /// This device as a fleet manager sees it.
    pub fn report(&self) -> crate::protocol::DeviceReport {
        crate::protocol::DeviceReport {
            info: self.info(),
            free_disk: crate::sys::fs::free_space(&self.inner.config.data_dir).unwrap_or(0),
            free_memory: crate::sys::process::available_memory().unwrap_or(0),
            health: self.health(),
            modules: self.list(),
            group: None,
        }
    }

    /// Every module's health: healthy when it is where it should be
    /// (running when desired so, or finished cleanly) and not given up on.
    fn health(&self) -> Vec<crate::protocol::ModuleHealth> {
        use crate::protocol::{DesiredState, ModuleState};
        self.list()
            .iter()
            .filter_map(|m| self.status(&m.id).ok())
            .map(|s| crate::protocol::ModuleHealth {
                healthy: match (&s.summary.state, s.desired) {
                    (ModuleState::Failed { .. } | ModuleState::BackingOff { .. }, _) => false,
                    (ModuleState::Exited { code }, _) => *code == 0,
                    (ModuleState::Running | ModuleState::Starting, _) => true,
                    (_, desired) => desired != DesiredState::Running,
                },
                id: s.summary.id,
                restarts: s.restarts,
                last_error: s.last_error,
            })
            .collect()
    }

    /// The engine fingerprints artifacts must be compiled for: plain and
    /// fuel-metered, as shown.
    pub fn fingerprints(&self) -> [String; 2] {
        self.inner.engines.fingerprints().map(|f| f.to_string())
    }

    pub fn info(&self) -> DaemonInfo {
        let config = &self.inner.config;
        DaemonInfo {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            protocol: PROTOCOL_VERSION,
            fingerprint: {
                let [plain, metered] = self.inner.engines.fingerprints();
                format!("{plain}, with fuel metering {metered}")
            },
            target: config.engine.target.resolved().to_owned(),
            board: config.board.clone(),
            data_dir: config.data_dir.display().to_string(),
            uptime_secs: self.inner.started.elapsed().as_secs(),
            modules: self.lock().modules.len() as u32,
            interfaces: crate::host::provided::provided().map(|p| p.name()).collect(),
        }
    }
}

pub(super) fn summarize(slot: &Slot) -> ModuleSummary {
    let (kind, isolation) = match &slot.loaded {
        Some(loaded) => (loaded.manifests.deployment.kind, loaded.manifests.deployment.isolation),
        None => (ModuleKind::Command, Isolation::Worker),
    };
    ModuleSummary {
        id: slot.record.id.clone(),
        version: slot.record.current.version.clone(),
        kind,
        isolation,
        state: slot.state.clone(),
    }
}

/// A summary cut to size for a list, whatever the record holds (one
/// written before versions had a limit, a long failure).
pub(super) fn bounded(summary: ModuleSummary) -> ModuleSummary {
    ModuleSummary {
        id: shortened(&summary.id, crate::manifest::MAX_NAME_LEN),
        version: shortened(&summary.version, crate::manifest::MAX_VERSION_LEN),
        state: bounded_state(summary.state, SUMMARY_REASON_LEN),
        ..summary
    }
}

/// A state whose reason (a failure's, a wait's) is cut to `max` bytes.
pub(super) fn bounded_state(state: crate::protocol::ModuleState, max: usize) -> crate::protocol::ModuleState {
    use crate::protocol::ModuleState;
    match state {
        ModuleState::Failed { reason } => ModuleState::Failed {
            reason: shortened(&reason, max),
        },
        ModuleState::Waiting { reason } => ModuleState::Waiting {
            reason: shortened(&reason, max),
        },
        other => other,
    }
}

/// `text` cut to at most `max` bytes (on a character boundary), ending in
/// "…" when cut.
fn shortened(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    const MORE: &str = "…";
    let mut end = max - MORE.len();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{MORE}", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::frame::{MAX_FRAME_LEN, encode};
    use crate::protocol::{ModuleState, Response, ServerMessage};

    /// What broke: three modules with 100 KB versions made `arcella list`
    /// fail for good ("frame too large"). The largest summaries the bounds
    /// allow, for the most modules a daemon holds, are one frame.
    #[test]
    fn a_list_of_the_most_modules_with_the_longest_fields_fits_one_frame() {
        let worst = |i: usize| {
            bounded(ModuleSummary {
                id: format!("{i:0>100}"),
                version: "9".repeat(100 * 1024),
                kind: ModuleKind::Service,
                isolation: Isolation::Worker,
                state: ModuleState::Failed {
                    reason: "é".repeat(10_000),
                },
            })
        };
        let modules: Vec<ModuleSummary> = (0..MAX_MODULES).map(worst).collect();
        assert_eq!(modules[0].version.len(), crate::manifest::MAX_VERSION_LEN);
        let reply = ServerMessage::Response {
            id: u32::MAX,
            result: Ok(Response::Modules(modules)),
        };
        let frame = encode(&reply).expect("a list of the most modules fits one frame");
        assert!(frame.len() <= MAX_FRAME_LEN, "{} bytes", frame.len());
    }

    #[test]
    fn shortening_keeps_characters_whole_and_says_it_cut() {
        assert_eq!(shortened("short", 10), "short");
        let cut = shortened(&"é".repeat(100), 10);
        assert!(cut.len() <= 10 && cut.ends_with('…'), "{cut}");
    }
}
