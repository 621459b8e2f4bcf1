//! The periodic reading of the device and its modules (`Telemetry`).
//!
//! In-process instances count their own memory and CPU time into a
//! `run::Usage` the supervisor keeps; instances in workers are counted
//! the same way inside their worker, and the reading asks each worker
//! that hosts a running module for its figures (`ToWorker::Ping`, its
//! `Pong` carrying every instance's). Those answers are waited for at
//! most [`WORKER_WAIT`] in all: a worker that is slow, hung or gone
//! leaves its modules' `memory` and `cpu_ms` at `None`, and the reading
//! is never held up longer. (The pings themselves run on the control
//! plane under `workers.ipc_timeout`, like every request to a worker: one
//! that never answers is deemed hung and terminated there, not here.)

use super::Supervisor;
use super::queries::{bounded, summarize};
use crate::daemon::workers::WorkerPool;
use crate::protocol::telemetry::{ModuleTelemetry, Telemetry, WorkerTelemetry};
use crate::protocol::worker::{InstanceId, WorkerUsage};
use crate::protocol::{Isolation, ModuleState};
use crate::sys::process;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How long one reading waits for the workers' answers, all of them
/// together (they are asked at once).
pub const WORKER_WAIT: Duration = Duration::from_secs(1);

/// Bytes of a failure's (or a wait's) reason a reading carries, so that
/// the most modules a daemon holds fit one frame (`status` has it whole).
const REASON_LEN: usize = 64;

/// A module whose figures are in its worker's answer.
struct InWorker {
    /// Its place in the reading's `modules`.
    index: usize,
    pid: u32,
    instance: InstanceId,
}

impl Supervisor {
    /// Reads the device's memory, disk and uptime, the daemon's and each
    /// worker's resident memory, and every module's state, restarts, and
    /// (while it runs) memory and CPU time.
    ///
    /// Blocks the calling thread up to [`WORKER_WAIT`] while workers
    /// answer, so it must not be called on an executor's thread: the
    /// socket server answers it on the blocking pool, the MQTT agent from
    /// its own thread.
    pub fn telemetry(&self) -> Telemetry {
        let (mut modules, in_workers, mut workers) = {
            let state = self.lock();
            let mut workers: Vec<(String, u32)> = Vec::new();
            let mut in_workers = Vec::new();
            let modules = state
                .modules
                .values()
                .enumerate()
                .map(|(index, slot)| {
                    if let Some(host) = &slot.host
                        && !workers.iter().any(|(_, pid)| *pid == host.pid)
                    {
                        workers.push((host.group.clone(), host.pid));
                    }
                    let summary = bounded(summarize(slot));
                    let running = matches!(slot.state, ModuleState::Running);
                    // A stopping instance still holds its memory.
                    let alive = running || matches!(slot.state, ModuleState::Stopping);
                    let usage = slot.instance.as_ref().and_then(|i| i.usage.as_ref()).filter(|_| alive);
                    if let Some(host) = slot.host.as_ref().filter(|_| alive) {
                        in_workers.push(InWorker {
                            index,
                            pid: host.pid,
                            instance: host.instance,
                        });
                    }
                    ModuleTelemetry {
                        id: summary.id,
                        version: summary.version,
                        isolation: slot
                            .loaded
                            .as_ref()
                            .map_or(Isolation::Worker, |l| l.manifests.deployment.isolation),
                        state: super::queries::bounded_state(summary.state, REASON_LEN),
                        restarts: slot.restarts,
                        started_at: if running { slot.started_at } else { None },
                        memory: usage.map(|u| u.memory()),
                        cpu_ms: usage.map(|u| u.cpu_ms()),
                    }
                })
                .collect::<Vec<_>>();
            (modules, in_workers, workers)
        };
        let mut pids: Vec<u32> = in_workers.iter().map(|m| m.pid).collect();
        pids.sort_unstable();
        pids.dedup();
        let reports = ask_workers(&self.inner.workers, &self.inner.executor, pids);
        for module in in_workers {
            let figures = reports
                .get(&module.pid)
                .and_then(|usage| usage.per_instance.iter().find(|u| u.instance == module.instance));
            if let (Some(figures), Some(reading)) = (figures, modules.get_mut(module.index)) {
                reading.memory = Some(figures.memory);
                reading.cpu_ms = Some(figures.cpu_ms);
            }
        }
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

/// Pings the workers `pids` at once, on the control plane, and waits for
/// their answers until [`WORKER_WAIT`] has passed; whoever has not
/// answered by then is left out (its ping goes on without a listener).
fn ask_workers(pool: &WorkerPool, executor: &smol::Executor<'static>, pids: Vec<u32>) -> BTreeMap<u32, WorkerUsage> {
    if pids.is_empty() {
        return BTreeMap::new();
    }
    let asked: Vec<(u32, smol::Task<_>)> = pids
        .into_iter()
        .map(|pid| {
            let pool = pool.clone();
            (pid, executor.spawn(async move { pool.usage_of(pid).await }))
        })
        .collect();
    let deadline = Instant::now() + WORKER_WAIT;
    smol::block_on(async {
        let mut answers = BTreeMap::new();
        for (pid, mut task) in asked {
            let answer = smol::future::or(async { Some((&mut task).await) }, async {
                smol::Timer::at(deadline).await;
                None
            })
            .await;
            match answer {
                Some(Ok(Some(usage))) => {
                    answers.insert(pid, usage);
                }
                Some(Ok(None)) => {}
                Some(Err(e)) => log::debug!("telemetry: no figures from worker {pid}: {e}"),
                // Still waiting: let it finish (or time out) on its own.
                None => task.detach(),
            }
        }
        answers
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::frame::{MAX_FRAME_LEN, encode};
    use crate::protocol::{Response, ServerMessage};

    /// The most modules a daemon holds, each at its longest, are one
    /// `Telemetry` answer: all failed with long reasons, or all running,
    /// each in a worker of its own (a module has a worker only while it
    /// runs, with a state of one byte).
    #[test]
    fn a_reading_of_the_most_modules_at_their_longest_fits_one_frame() {
        let max = super::super::queries::MAX_MODULES;
        let module = |i: usize, state: ModuleState| ModuleTelemetry {
            id: format!("{i:x>63}"),
            version: "9".repeat(crate::manifest::MAX_VERSION_LEN),
            isolation: Isolation::Worker,
            state: super::super::queries::bounded_state(state, REASON_LEN),
            restarts: u32::MAX,
            started_at: Some(u64::MAX),
            memory: Some(u64::MAX),
            cpu_ms: Some(u64::MAX),
        };
        let reading = |state: ModuleState, workers: usize| Telemetry {
            at: u64::MAX,
            uptime_secs: u64::MAX,
            free_memory: u64::MAX,
            total_memory: u64::MAX,
            free_disk: u64::MAX,
            daemon_resident: u64::MAX,
            modules: (0..max).map(|i| module(i, state.clone())).collect(),
            workers: (0..workers)
                .map(|i| WorkerTelemetry {
                    group: format!("{i:g>63}"),
                    pid: u32::MAX,
                    resident: u64::MAX,
                })
                .collect(),
        };
        let failed = ModuleState::Failed {
            reason: "é".repeat(10_000),
        };
        for reading in [reading(failed, 0), reading(ModuleState::Running, max)] {
            let reply = ServerMessage::Response {
                id: u32::MAX,
                result: Ok(Response::Telemetry(reading)),
            };
            let frame = encode(&reply).expect("a reading of the most modules fits one frame");
            assert!(frame.len() <= MAX_FRAME_LEN, "{} bytes", frame.len());
        }
    }
}
