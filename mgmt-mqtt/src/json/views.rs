//! The JSON mirror's payloads: what `docs/mqtt-v1.schema.json` describes,
//! built from the protocol's types here and nowhere else, so the
//! postcard types can change without changing what other tools read.
//! Modules are objects keyed by module id (a template can say
//! `value_json.modules['ticker'].state`); names follow the module-name
//! rule, so they need no escaping anywhere.

use arcella_core::protocol::fleet::{Convergence, DocumentId, Phase, Step};
use arcella_core::protocol::telemetry::Telemetry;
use arcella_core::protocol::{DeviceReport, Event, LogLevel, LogStream, ModuleHealth, ModuleState};
use serde::Serialize;
use std::collections::BTreeMap;

/// `<base>/json/state`, retained: the device and each module's state.
#[derive(Debug, Serialize)]
pub struct StateView<'a> {
    pub device: &'a str,
    pub group: Option<&'a str>,
    /// Unix seconds.
    pub at: u64,
    pub arcella: &'a str,
    pub protocol: u16,
    pub target: &'a str,
    pub board: &'a str,
    pub fingerprint: &'a str,
    pub uptime_secs: u64,
    pub free_memory: u64,
    pub free_disk: u64,
    pub module_count: usize,
    pub modules: BTreeMap<&'a str, ModuleView<'a>>,
}

#[derive(Debug, Serialize)]
pub struct ModuleView<'a> {
    pub version: &'a str,
    pub kind: &'static str,
    pub isolation: &'static str,
    #[serde(flatten)]
    pub state: StateFields<'a>,
    pub healthy: bool,
    pub restarts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<&'a str>,
}

/// A module state as a word, and what that state carries.
#[derive(Debug, Serialize)]
pub struct StateFields<'a> {
    pub state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_in_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'a str>,
}

impl<'a> StateFields<'a> {
    pub fn of(state: &'a ModuleState) -> Self {
        let mut fields = Self {
            state: state.word(),
            exit_code: None,
            attempt: None,
            retry_in_ms: None,
            reason: None,
        };
        match state {
            ModuleState::Exited { code } => fields.exit_code = Some(*code),
            ModuleState::BackingOff { attempt, in_ms } => {
                fields.attempt = Some(*attempt);
                fields.retry_in_ms = Some(*in_ms);
            }
            ModuleState::Failed { reason } | ModuleState::Waiting { reason } => fields.reason = Some(reason),
            ModuleState::Stopped | ModuleState::Starting | ModuleState::Running | ModuleState::Stopping => {}
        }
        fields
    }
}

impl<'a> StateView<'a> {
    pub fn new(device: &'a str, report: &'a DeviceReport, at: u64) -> Self {
        let health: BTreeMap<&str, &ModuleHealth> = report.health.iter().map(|h| (h.id.as_str(), h)).collect();
        let modules = report
            .modules
            .iter()
            .map(|m| {
                let health = health.get(m.id.as_str());
                let view = ModuleView {
                    version: &m.version,
                    kind: m.kind.word(),
                    isolation: m.isolation.word(),
                    state: StateFields::of(&m.state),
                    healthy: health.is_some_and(|h| h.healthy),
                    restarts: health.map_or(0, |h| h.restarts),
                    last_error: health.and_then(|h| h.last_error.as_deref()),
                };
                (m.id.as_str(), view)
            })
            .collect::<BTreeMap<_, _>>();
        Self {
            device,
            group: report.group.as_deref(),
            at,
            arcella: &report.info.version,
            protocol: report.info.protocol,
            target: &report.info.target,
            board: &report.info.board,
            fingerprint: &report.info.fingerprint,
            uptime_secs: report.info.uptime_secs,
            free_memory: report.free_memory,
            free_disk: report.free_disk,
            module_count: modules.len(),
            modules,
        }
    }
}

/// `<base>/json/convergence`, retained: progress towards the desired state.
#[derive(Debug, Serialize)]
pub struct ConvergenceView<'a> {
    pub device: &'a str,
    pub group: Option<&'a str>,
    pub phase: &'static str,
    pub group_document: Option<DocumentView>,
    pub device_document: Option<DocumentView>,
    pub modules: BTreeMap<&'a str, StepView<'a>>,
    pub refused: Option<RefusedView<'a>>,
}

#[derive(Debug, Serialize)]
pub struct DocumentView {
    pub version: u64,
    /// Of the signed body, hex.
    pub sha256: String,
}

impl From<&DocumentId> for DocumentView {
    fn from(d: &DocumentId) -> Self {
        Self {
            version: d.version,
            sha256: arcella_core::digest::hex(&d.sha256),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct StepView<'a> {
    pub step: &'static str,
    /// Whether this step is where the document wants the module.
    pub success: bool,
    /// Whether the step is a verdict (not work still going on).
    pub done: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub received: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    /// End of the health window, Unix seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'a str>,
    /// With needs_artifact: the device's engine fingerprint now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub engine: Option<&'a str>,
}

impl<'a> StepView<'a> {
    fn of(step: &'a Step) -> Self {
        let word = |word| Self {
            step: word,
            success: step.is_success(),
            done: step.is_verdict(),
            received: None,
            total: None,
            until: None,
            reason: None,
            engine: None,
        };
        match step {
            Step::Pending => word("pending"),
            Step::Fetching { received, total } => Self {
                received: Some(*received),
                total: Some(*total),
                ..word("fetching")
            },
            Step::Installing => word("installing"),
            Step::HealthWindow { until } => Self {
                until: Some(*until),
                ..word("health_window")
            },
            Step::Healthy => word("healthy"),
            Step::Stopped => word("stopped"),
            Step::Removed => word("removed"),
            Step::RolledBack { reason } => Self {
                reason: Some(reason),
                ..word("rolled_back")
            },
            Step::Failed { reason } => Self {
                reason: Some(reason),
                ..word("failed")
            },
            Step::Drifted { reason } => Self {
                reason: Some(reason),
                ..word("drifted")
            },
            Step::NeedsArtifact { engine } => Self {
                engine: Some(engine),
                ..word("needs_artifact")
            },
        }
    }
}

#[derive(Debug, Serialize)]
pub struct RefusedView<'a> {
    pub source: &'a str,
    pub version: u64,
    pub reason: String,
}

impl<'a> ConvergenceView<'a> {
    pub fn new(device: &'a str, c: &'a Convergence) -> Self {
        Self {
            device,
            group: c.group.as_deref(),
            phase: match c.phase {
                Phase::Idle => "idle",
                Phase::Applying => "applying",
                Phase::Converged => "converged",
                Phase::Failed => "failed",
            },
            group_document: c.group_document.as_ref().map(DocumentView::from),
            device_document: c.device_document.as_ref().map(DocumentView::from),
            modules: c
                .modules
                .iter()
                .map(|m| (m.id.as_str(), StepView::of(&m.step)))
                .collect(),
            refused: c.refused.as_ref().map(|r| RefusedView {
                source: &r.source,
                version: r.version,
                reason: r.reason.to_string(),
            }),
        }
    }
}

/// `<base>/json/telemetry`, retained: the last periodic reading.
#[derive(Debug, Serialize)]
pub struct TelemetryView<'a> {
    pub device: &'a str,
    pub at: u64,
    pub uptime_secs: u64,
    pub free_memory: u64,
    pub total_memory: u64,
    pub free_disk: u64,
    pub daemon_resident: u64,
    pub modules: BTreeMap<&'a str, ModuleUsageView<'a>>,
    pub workers: Vec<WorkerView<'a>>,
}

#[derive(Debug, Serialize)]
pub struct ModuleUsageView<'a> {
    pub version: &'a str,
    pub isolation: &'static str,
    #[serde(flatten)]
    pub state: StateFields<'a>,
    pub restarts: u32,
    pub started_at: Option<u64>,
    /// Bytes of linear memory (null: not running, or not known).
    pub memory: Option<u64>,
    pub cpu_ms: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct WorkerView<'a> {
    pub group: &'a str,
    pub pid: u32,
    pub resident: u64,
}

impl<'a> TelemetryView<'a> {
    pub fn new(device: &'a str, t: &'a Telemetry) -> Self {
        Self {
            device,
            at: t.at,
            uptime_secs: t.uptime_secs,
            free_memory: t.free_memory,
            total_memory: t.total_memory,
            free_disk: t.free_disk,
            daemon_resident: t.daemon_resident,
            modules: t
                .modules
                .iter()
                .map(|m| {
                    let view = ModuleUsageView {
                        version: &m.version,
                        isolation: m.isolation.word(),
                        state: StateFields::of(&m.state),
                        restarts: m.restarts,
                        started_at: m.started_at,
                        memory: m.memory,
                        cpu_ms: m.cpu_ms,
                    };
                    (m.id.as_str(), view)
                })
                .collect(),
            workers: t
                .workers
                .iter()
                .map(|w| WorkerView {
                    group: &w.group,
                    pid: w.pid,
                    resident: w.resident,
                })
                .collect(),
        }
    }
}

/// `<base>/json/events`, QoS 0: a module's state change or log line.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum EventView<'a> {
    State {
        device: &'a str,
        module: &'a str,
        at_ms: u64,
        #[serde(flatten)]
        state: StateFields<'a>,
    },
    Log {
        device: &'a str,
        module: &'a str,
        at_ms: u64,
        stream: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        level: Option<&'static str>,
        text: &'a str,
    },
}

impl<'a> EventView<'a> {
    pub fn new(device: &'a str, event: &'a Event, now_ms: u64) -> Self {
        match event {
            Event::State { module, state } => EventView::State {
                device,
                module,
                at_ms: now_ms,
                state: StateFields::of(state),
            },
            Event::Log(line) => {
                let (stream, level) = match line.stream {
                    LogStream::Stdout => ("stdout", None),
                    LogStream::Stderr => ("stderr", None),
                    LogStream::Daemon => ("daemon", None),
                    LogStream::Logging(level) => ("logging", Some(level_word(level))),
                };
                EventView::Log {
                    device,
                    module: &line.module,
                    at_ms: line.at_ms,
                    stream,
                    level,
                    text: &line.text,
                }
            }
        }
    }
}

fn level_word(level: LogLevel) -> &'static str {
    match level {
        LogLevel::Trace => "trace",
        LogLevel::Debug => "debug",
        LogLevel::Info => "info",
        LogLevel::Warn => "warn",
        LogLevel::Error => "error",
        LogLevel::Critical => "critical",
    }
}

/// `arcella/v1/group/<G>/json/rollout`, retained: a staged rollout's
/// progress, published by the operator running it.
#[derive(Debug, Serialize)]
pub struct RolloutView<'a> {
    pub group: &'a str,
    pub id: &'a str,
    pub module: &'a str,
    pub operator: &'a str,
    pub started: u64,
    pub updated: u64,
    /// updating, soaking, finishing, done, aborting, aborted.
    pub phase: &'static str,
    /// The wave being updated or soaked (from 1); null when not in a wave.
    pub wave: Option<u32>,
    pub wave_count: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub soak_until: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'a str>,
    pub failures: usize,
    pub max_failures: usize,
    pub waves: Vec<WaveView>,
    pub devices: BTreeMap<&'a str, RolloutDeviceView<'a>>,
}

#[derive(Debug, Serialize)]
pub struct WaveView {
    pub devices: usize,
    pub healthy: usize,
    pub failed: usize,
}

#[derive(Debug, Serialize)]
pub struct RolloutDeviceView<'a> {
    /// From 1.
    pub wave: u32,
    /// waiting, updating, healthy, failed, restored, restore_pending.
    pub status: &'static str,
    /// Why it failed (kept once restored), or why its return is pending.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'a str>,
}

impl<'a> RolloutView<'a> {
    pub fn new(s: &'a crate::rollout::state::RolloutState) -> Self {
        use crate::rollout::state::{DeviceStatus, RolloutPhase};
        let (wave, soak_until, reason) = match &s.phase {
            RolloutPhase::Wave { index, soak_until } => (Some(index + 1), *soak_until, None),
            RolloutPhase::Aborting { reason } | RolloutPhase::Aborted { reason } => (None, None, Some(reason.as_str())),
            RolloutPhase::Finishing | RolloutPhase::Done => (None, None, None),
        };
        let count = |ids: &[String], f: fn(&DeviceStatus) -> bool| {
            ids.iter()
                .filter(|id| s.devices.get(id.as_str()).is_some_and(|d| f(&d.status)))
                .count()
        };
        Self {
            group: &s.group,
            id: &s.id,
            module: &s.entry.id,
            operator: &s.operator,
            started: s.started,
            updated: s.updated,
            phase: s.phase.word(),
            wave,
            wave_count: s.waves.len(),
            soak_until,
            reason,
            failures: s.failures(),
            max_failures: s.tolerated(),
            waves: s
                .waves
                .iter()
                .map(|ids| WaveView {
                    devices: ids.len(),
                    healthy: count(ids, |d| *d == DeviceStatus::Healthy),
                    failed: ids
                        .iter()
                        .filter(|id| s.devices.get(id.as_str()).is_some_and(|d| d.failure.is_some()))
                        .count(),
                })
                .collect(),
            devices: s
                .devices
                .iter()
                .map(|(id, d)| {
                    (
                        id.as_str(),
                        RolloutDeviceView {
                            wave: d.wave + 1,
                            status: d.status.word(),
                            reason: d.failure.as_deref().or(d.status.reason()),
                        },
                    )
                })
                .collect(),
        }
    }
}
