//! Watching the modules the fleet applied, between inputs: each one in
//! its health window until its verdict, then for drift. Drift is
//! reported, and restored when `[mqtt] drift = "restore"`.

use super::verdict::{self, Observed};
use super::{DRIFT_TICK, Reconciler, WINDOW_TICK};
use arcella_core::daemon::config::mqtt::DriftPolicy;
use arcella_core::protocol::fleet::Step;
use arcella_core::protocol::{Request, Response};
use std::time::Duration;

pub(super) use verdict::Watch;

/// Unix seconds now.
pub(super) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Reconciler {
    /// How long to wait for an input before looking at the modules again.
    pub(super) fn watch_interval(&self) -> Option<Duration> {
        if self.watched.values().any(|w| w.until.is_some()) {
            Some(WINDOW_TICK)
        } else if self.watched.is_empty() {
            None
        } else {
            Some(DRIFT_TICK)
        }
    }

    /// What `status` says of a module now (`None`: not installed).
    pub(super) fn observe(&self, id: &str) -> Option<Observed> {
        match self
            .device
            .answer(&self.actor(), Request::Status { module: id.to_owned() })
        {
            Ok(Response::Status(status)) => Some(Observed::of(&status)),
            _ => None,
        }
    }

    /// Looks at every watched module once and publishes what changed.
    pub(super) fn watch(&mut self) {
        let now = unix_now();
        let ids: Vec<String> = self.watched.keys().cloned().collect();
        for id in ids {
            let observed = self.observe(&id);
            let Some(watch) = self.watched.get_mut(&id) else {
                continue;
            };
            let step = if watch.until.is_some() {
                verdict::in_window(observed.as_ref(), watch, now)
            } else {
                verdict::settled(observed.as_ref(), watch)
            };
            if watch.until.is_some() && step.is_verdict() {
                watch.until = None;
                watch.code = observed.as_ref().map(|o| o.code.clone());
            }
            match &step {
                // A verdict against the new version stands until the next
                // document; the previous version is not watched for drift.
                Step::Failed { .. } | Step::RolledBack { .. } => {
                    self.watched.remove(&id);
                }
                Step::Drifted { reason } => {
                    log::warn!("fleet module `{id}` drifted from its desired state: {reason}");
                    if self.settings.drift == DriftPolicy::Restore {
                        self.restore(&id, observed.as_ref());
                    }
                }
                _ => {}
            }
            self.progress(&id, step);
        }
        self.settle_phase();
    }

    /// Brings a drifted module back: a crash loop is restarted once per
    /// document; anything else is applied again (reinstalled, updated
    /// back, started or stopped).
    fn restore(&mut self, id: &str, observed: Option<&Observed>) {
        let crash_looping = observed.is_some_and(|o| {
            matches!(
                o.state,
                arcella_core::protocol::ModuleState::BackingOff { .. }
                    | arcella_core::protocol::ModuleState::Failed { .. }
            )
        });
        let code_changed = match (observed, self.watched.get(id).and_then(|w| w.code.as_ref())) {
            (Some(o), Some(code)) => o.code != *code,
            (None, _) => true,
            _ => false,
        };
        if crash_looping && !code_changed {
            let Some(watch) = self.watched.get_mut(id) else {
                return;
            };
            if !watch.restarted {
                watch.restarted = true;
                log::info!("restoring fleet module `{id}`: restarting it");
                let _ = self
                    .device
                    .answer(&self.actor(), Request::Restart { module: id.to_owned() });
            }
            return;
        }
        log::info!("restoring fleet module `{id}` to its desired state");
        if code_changed {
            self.record.managed.remove(id);
        }
        self.watched.remove(id);
        self.dirty = true;
    }
}
