//! Disk quotas of granted read-write directories (`quota` in
//! `[[capabilities.dirs]]`), by periodic accounting: every
//! [`QUOTA_PERIOD`] the daemon measures each running module's quota'd
//! directories (off the control thread) and fails a module that holds more
//! than its quota, naming the directory, the quota and the use. The bound:
//! a guest can write past its quota by what it writes in one period, and
//! the daemon's own records keep a reserve on the same file system
//! (`sys::reserve`), so `stop` and `remove` work even when it filled it.

use super::Supervisor;
use crate::manifest::QUOTA_PERIOD;
use crate::protocol::ModuleState;
use crate::units::format_bytes;
use std::path::PathBuf;

/// One quota'd directory of a running instance.
struct Watched {
    id: String,
    generation: u64,
    dir: PathBuf,
    quota: u64,
}

impl Supervisor {
    /// Starts measuring quota'd directories, for as long as the daemon runs
    /// (called once, at start).
    pub fn watch_disk_quotas(&self) {
        self.inner.executor.spawn(self.clone().measure_quotas()).detach();
    }

    async fn measure_quotas(self) {
        loop {
            // Nothing quota'd runs: sleep until an instance that has a
            // quota'd directory starts (no timer, no wake-ups meanwhile).
            if self.quota_dirs().is_empty() {
                self.inner.quota_wake.wait().await;
            }
            smol::Timer::after(QUOTA_PERIOD).await;
            for watched in self.quota_dirs() {
                let dir = watched.dir.clone();
                let used = crate::offload::offload(move || crate::sys::fs::tree_size(&dir)).await;
                match used {
                    Ok(used) if used > watched.quota => self.over_quota(&watched, used),
                    Ok(_) => {}
                    Err(e) => log::debug!("{}: cannot measure {}: {e}", watched.id, watched.dir.display()),
                }
            }
        }
    }

    fn quota_dirs(&self) -> Vec<Watched> {
        let state = self.lock();
        let mut watched = Vec::new();
        for (id, slot) in &state.modules {
            let (Some(loaded), Some(_)) = (&slot.loaded, &slot.instance) else {
                continue;
            };
            for dir in &loaded.manifests.deployment.capabilities.dirs {
                if let Some(quota) = dir.quota {
                    watched.push(Watched {
                        id: id.clone(),
                        generation: slot.generation,
                        dir: dir.host.clone(),
                        quota,
                    });
                }
            }
        }
        watched
    }

    fn over_quota(&self, watched: &Watched, used: u64) {
        let mut state = self.lock();
        let current = state
            .modules
            .get(&watched.id)
            .is_some_and(|slot| slot.generation == watched.generation && slot.instance.is_some());
        if !current {
            return;
        }
        let reason = format!(
            "{}: disk quota of {} exceeded in {} ({} used); free space there or raise its quota in \
             deployment.toml ([[capabilities.dirs]] quota)",
            watched.id,
            format_bytes(watched.quota),
            watched.dir.display(),
            format_bytes(used)
        );
        log::warn!("{reason}");
        self.inner.audit.note(
            crate::protocol::audit::Actor::Guest,
            "denied-quota",
            Some(&watched.id),
            Err("denied"),
            &reason,
        );
        self.halt(&mut state, &watched.id, &reason);
        if let Some(slot) = state.modules.get_mut(&watched.id) {
            slot.last_error = Some(reason.clone());
        }
        self.set_state(&mut state, &watched.id, ModuleState::Failed { reason });
    }
}

/// A level-triggered wake-up for the measurement loop: a wake before the
/// wait is not lost (a channel of one).
pub(super) struct Wake {
    tx: async_channel::Sender<()>,
    rx: async_channel::Receiver<()>,
}

impl Default for Wake {
    fn default() -> Self {
        let (tx, rx) = async_channel::bounded(1);
        Self { tx, rx }
    }
}

impl Wake {
    pub(super) fn wake(&self) {
        let _ = self.tx.try_send(());
    }

    async fn wait(&self) {
        let _ = self.rx.recv().await;
    }
}
