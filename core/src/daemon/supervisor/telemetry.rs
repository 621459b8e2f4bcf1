//! The periodic reading of the device and its modules (`Telemetry`).

use super::Supervisor;
use crate::protocol::telemetry::{ModuleTelemetry, Telemetry, WorkerTelemetry};
use crate::protocol::{Isolation, ModuleState};
use crate::sys::process;

impl Supervisor {
    /// Reads the device's memory, disk and uptime, the daemon's and each
    /// worker's resident memory, and every module's state and restarts.
    pub fn telemetry(&self) -> Telemetry {
        let (modules, mut workers) = {
            let state = self.lock();
            let mut workers: Vec<(String, u32)> = Vec::new();
            let modules = state
                .modules
                .values()
                .map(|slot| {
                    if let Some(host) = &slot.host
                        && !workers.iter().any(|(_, pid)| *pid == host.pid)
                    {
                        workers.push((host.group.clone(), host.pid));
                    }
                    let running = matches!(slot.state, ModuleState::Running);
                    ModuleTelemetry {
                        id: slot.record.id.clone(),
                        version: slot.record.current.version.clone(),
                        isolation: slot
                            .loaded
                            .as_ref()
                            .map_or(Isolation::Worker, |l| l.manifests.deployment.isolation),
                        state: slot.state.clone(),
                        restarts: slot.restarts,
                        started_at: if running { slot.started_at } else { None },
                        memory: None,
                        cpu_ms: None,
                    }
                })
                .collect::<Vec<_>>();
            (modules, workers)
        };
        workers.sort();
        Telemetry {
            at: crate::protocol::now_ms() / 1000,
            uptime_secs: self.inner.started.elapsed().as_secs(),
            free_memory: process::available_memory().unwrap_or(0),
            total_memory: process::total_memory().unwrap_or(0),
            free_disk: crate::sys::fs::free_space(&self.inner.config.data_dir).unwrap_or(0),
            daemon_resident: process::resident_bytes(std::process::id()).unwrap_or(0),
            modules,
            workers: workers
                .into_iter()
                .map(|(group, pid)| WorkerTelemetry {
                    resident: process::resident_bytes(pid).unwrap_or(0),
                    group,
                    pid,
                })
                .collect(),
        }
    }
}
