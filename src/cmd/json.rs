//! The objects `--json` prints, one per line: flat, every key always
//! present (`null` when it does not apply), words in snake_case. They are
//! the CLI's contract with scripts, listed in docs/cli.md; the protocol's
//! own types (postcard on the wire) are free to change shape, these are not.

use arcella_core::protocol::{
    self, DaemonInfo, ErrorKind, LogLine, LogStream, ModuleState, ModuleStatus, ModuleSummary, UpdateOutcome,
};
use serde::Serialize;

/// A remote error's kind as `{"error": {"kind": …}}` names it.
pub fn error_kind(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::BadRequest => "bad_request",
        ErrorKind::NotFound => "not_found",
        ErrorKind::AlreadyExists => "already_exists",
        ErrorKind::InvalidManifest => "invalid_manifest",
        ErrorKind::InvalidArtifact => "invalid_artifact",
        ErrorKind::Unavailable => "unavailable",
        ErrorKind::PermissionDenied => "permission_denied",
        ErrorKind::ResourceExhausted => "resource_exhausted",
        ErrorKind::Internal => "internal",
    }
}

/// A module's state: `state` is always a word; what goes with it sits
/// beside it.
#[derive(Debug, Serialize)]
pub struct State {
    /// stopped, starting, running, stopping, exited, backing_off, failed, waiting.
    pub state: &'static str,
    /// With `exited`: the exit code.
    pub exit_code: Option<i32>,
    /// With `failed`: why the daemon gave up.
    pub failure: Option<String>,
    /// With `backing_off`: the restart attempt to come, and in how long.
    pub restart_attempt: Option<u32>,
    pub restart_in_ms: Option<u64>,
    /// With `waiting`: the import that has no provider yet.
    pub waiting_for: Option<String>,
}

impl From<&ModuleState> for State {
    fn from(state: &ModuleState) -> Self {
        let mut fields = Self {
            state: state.word(),
            exit_code: None,
            failure: None,
            restart_attempt: None,
            restart_in_ms: None,
            waiting_for: None,
        };
        match state {
            ModuleState::Exited { code } => fields.exit_code = Some(*code),
            ModuleState::BackingOff { attempt, in_ms } => {
                fields.restart_attempt = Some(*attempt);
                fields.restart_in_ms = Some(*in_ms);
            }
            ModuleState::Failed { reason } => fields.failure = Some(reason.clone()),
            ModuleState::Waiting { reason } => fields.waiting_for = Some(reason.clone()),
            ModuleState::Stopped | ModuleState::Starting | ModuleState::Running | ModuleState::Stopping => {}
        }
        fields
    }
}

/// An artifact's kind: `module` (a core module) or `component`.
pub fn artifact_kind(kind: arcella_core::artifact::ArtifactKind) -> &'static str {
    match kind {
        arcella_core::artifact::ArtifactKind::Module => "module",
        arcella_core::artifact::ArtifactKind::Component => "component",
    }
}

/// `list` (an array of these), and what install, update, rollback, start,
/// stop and restart leave.
#[derive(Debug, Serialize)]
pub struct Module {
    pub id: String,
    pub version: String,
    pub kind: &'static str,
    pub isolation: &'static str,
    #[serde(flatten)]
    pub state: State,
}

impl From<&ModuleSummary> for Module {
    fn from(m: &ModuleSummary) -> Self {
        Self {
            id: m.id.clone(),
            version: m.version.clone(),
            kind: m.kind.word(),
            isolation: m.isolation.word(),
            state: State::from(&m.state),
        }
    }
}

/// `status ID`.
#[derive(Debug, Serialize)]
pub struct Status {
    #[serde(flatten)]
    pub module: Module,
    /// running or stopped: what the daemon keeps it at.
    pub desired: &'static str,
    pub artifact_sha256: String,
    pub previous_version: Option<String>,
    pub restarts: u32,
    pub last_exit: Option<i32>,
    pub last_error: Option<String>,
    /// Unix seconds.
    pub started_at: Option<u64>,
    pub worker_group: Option<String>,
    pub worker_pid: Option<u32>,
    pub worker_resident_bytes: Option<u64>,
    pub update_from: Option<String>,
    pub update_to: Option<String>,
    /// Unix seconds.
    pub update_at: Option<u64>,
    /// probation, succeeded, rolled_back, reverted.
    pub update_outcome: Option<&'static str>,
    /// With `probation`: the end of the health window (Unix seconds).
    pub update_until: Option<u64>,
    /// With `rolled_back`: why.
    pub update_reason: Option<String>,
    /// Its use of the message bus (docs/messaging.md); absent if none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub messaging: Option<protocol::messaging::MessagingStats>,
}

impl From<&ModuleStatus> for Status {
    fn from(s: &ModuleStatus) -> Self {
        let update = s.last_update.as_ref();
        let outcome = update.map(|u| &u.outcome);
        Self {
            module: Module::from(&s.summary),
            desired: match s.desired {
                protocol::DesiredState::Running => "running",
                protocol::DesiredState::Stopped => "stopped",
            },
            artifact_sha256: s.artifact.clone(),
            previous_version: s.previous_version.clone(),
            restarts: s.restarts,
            last_exit: s.last_exit,
            last_error: s.last_error.clone(),
            started_at: s.started_at,
            worker_group: s.worker.as_ref().map(|w| w.group.clone()),
            worker_pid: s.worker.as_ref().map(|w| w.pid),
            worker_resident_bytes: s.worker.as_ref().map(|w| w.resident_bytes),
            update_from: update.map(|u| u.from.clone()),
            update_to: update.map(|u| u.to.clone()),
            update_at: update.map(|u| u.at),
            update_outcome: outcome.map(|o| match o {
                UpdateOutcome::Probation { .. } => "probation",
                UpdateOutcome::Succeeded => "succeeded",
                UpdateOutcome::RolledBack { .. } => "rolled_back",
                UpdateOutcome::Reverted => "reverted",
            }),
            update_until: match outcome {
                Some(UpdateOutcome::Probation { until }) => Some(*until),
                _ => None,
            },
            update_reason: match outcome {
                Some(UpdateOutcome::RolledBack { reason }) => Some(reason.clone()),
                _ => None,
            },
            messaging: s.messaging,
        }
    }
}

/// `info`.
#[derive(Debug, Serialize)]
pub struct Info {
    pub version: String,
    pub protocol: u16,
    pub fingerprint: String,
    pub target: String,
    pub board: String,
    pub data_dir: String,
    pub uptime_secs: u64,
    pub modules: u32,
    pub interfaces: Vec<String>,
}

impl From<&DaemonInfo> for Info {
    fn from(i: &DaemonInfo) -> Self {
        Self {
            version: i.version.clone(),
            protocol: i.protocol,
            fingerprint: i.fingerprint.clone(),
            target: i.target.clone(),
            board: i.board.clone(),
            data_dir: i.data_dir.clone(),
            uptime_secs: i.uptime_secs,
            modules: i.modules,
            interfaces: i.interfaces.clone(),
        }
    }
}

/// `inspect ID` (an installed module).
#[derive(Debug, Serialize)]
pub struct Installed {
    pub id: String,
    /// module or component.
    pub kind: &'static str,
    pub fingerprint: String,
    pub code_sha256: String,
    pub source_sha256: String,
    pub exports: Vec<String>,
    pub imports: Vec<String>,
}

impl From<&protocol::ModuleInspect> for Installed {
    fn from(i: &protocol::ModuleInspect) -> Self {
        Self {
            id: i.id.clone(),
            kind: if i.artifact_kind.contains("component") {
                "component"
            } else {
                "module"
            },
            fingerprint: i.fingerprint.clone(),
            code_sha256: i.code_sha256.clone(),
            source_sha256: i.source_sha256.clone(),
            exports: i.exports.clone(),
            imports: i.imports.clone(),
        }
    }
}

/// One line of `logs` (and `logs --follow`'s state changes): `event`
/// says which.
#[derive(Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Log {
        module: String,
        /// stdout, stderr, daemon (the daemon's notes about the module), or
        /// logging (`wasi:logging`).
        stream: &'static str,
        /// trace, debug, info, warn, error or critical: a `wasi:logging`
        /// line's own; stdout and daemon lines are info, stderr warn.
        level: &'static str,
        /// Unix milliseconds.
        at_ms: u64,
        text: String,
    },
    State {
        module: String,
        #[serde(flatten)]
        state: State,
    },
}

impl From<&LogLine> for Event {
    fn from(line: &LogLine) -> Self {
        Event::Log {
            module: line.module.clone(),
            stream: match line.stream {
                LogStream::Stdout => "stdout",
                LogStream::Stderr => "stderr",
                LogStream::Daemon => "daemon",
                LogStream::Logging(_) => "logging",
            },
            level: line.stream.level().word(),
            at_ms: line.at_ms,
            text: line.text.clone(),
        }
    }
}

impl From<&protocol::Event> for Event {
    fn from(event: &protocol::Event) -> Self {
        match event {
            protocol::Event::Log(line) => Event::from(line),
            protocol::Event::State { module, state } => Event::State {
                module: module.clone(),
                state: State::from(state),
            },
        }
    }
}

/// `remove ID`.
#[derive(Debug, Serialize)]
pub struct Removed {
    pub id: String,
    pub removed: bool,
}

/// `gc`.
#[derive(Debug, Serialize)]
pub struct Collected {
    /// Code digests (hex) of the artifacts deleted.
    pub artifacts: Vec<String>,
    pub uploads: u32,
    pub bytes: u64,
}

/// `{"error": {"kind": …, "message": …}}`, on stderr.
#[derive(Debug, Serialize)]
pub struct Error<'a> {
    pub error: ErrorBody<'a>,
}

#[derive(Debug, Serialize)]
pub struct ErrorBody<'a> {
    pub kind: &'a str,
    pub message: &'a str,
    /// The process's exit code, repeated for whoever reads only the text.
    pub exit_code: u8,
}

/// `arcella wiring --json`: `{"providers": [...], "links": [...], "waiting": [...]}`.
#[derive(Debug, Serialize)]
pub struct Wiring {
    pub providers: Vec<WiringProvider>,
    pub links: Vec<WiringLink>,
    pub waiting: Vec<WiringWaiting>,
}

#[derive(Debug, Serialize)]
pub struct WiringProvider {
    pub module: String,
    pub version: String,
    pub exports: Vec<String>,
    pub process: String,
}

#[derive(Debug, Serialize)]
pub struct WiringLink {
    pub consumer: String,
    pub import: String,
    pub provider: String,
    pub process: String,
}

#[derive(Debug, Serialize)]
pub struct WiringWaiting {
    pub module: String,
    pub reason: String,
}

impl From<&arcella_core::protocol::Wiring> for Wiring {
    fn from(w: &arcella_core::protocol::Wiring) -> Self {
        Self {
            providers: w
                .providers
                .iter()
                .map(|p| WiringProvider {
                    module: p.module.clone(),
                    version: p.version.clone(),
                    exports: p.exports.clone(),
                    process: p.process.clone(),
                })
                .collect(),
            links: w
                .links
                .iter()
                .map(|l| WiringLink {
                    consumer: l.consumer.clone(),
                    import: l.import.clone(),
                    provider: l.provider.clone(),
                    process: l.process.clone(),
                })
                .collect(),
            waiting: w
                .waiting
                .iter()
                .map(|(module, reason)| WiringWaiting {
                    module: module.clone(),
                    reason: reason.clone(),
                })
                .collect(),
        }
    }
}

/// `arcella telemetry --json`: the device's figures, `modules` and `workers`.
#[derive(Debug, Serialize)]
pub struct Telemetry {
    /// Unix seconds.
    pub at: u64,
    pub uptime_secs: u64,
    pub free_memory_bytes: u64,
    pub total_memory_bytes: u64,
    pub free_disk_bytes: u64,
    pub daemon_resident_bytes: u64,
    pub modules: Vec<TelemetryModule>,
    pub workers: Vec<TelemetryWorker>,
}

#[derive(Debug, Serialize)]
pub struct TelemetryModule {
    pub id: String,
    pub version: String,
    pub isolation: &'static str,
    #[serde(flatten)]
    pub state: State,
    pub restarts: u32,
    /// Unix seconds; while it runs.
    pub started_at: Option<u64>,
    /// Bytes of linear memory; while it runs.
    pub memory_bytes: Option<u64>,
    /// Milliseconds its code has run since it started; while it runs.
    pub cpu_ms: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct TelemetryWorker {
    pub group: String,
    pub pid: u32,
    pub resident_bytes: u64,
}

impl From<&arcella_core::protocol::telemetry::Telemetry> for Telemetry {
    fn from(t: &arcella_core::protocol::telemetry::Telemetry) -> Self {
        Self {
            at: t.at,
            uptime_secs: t.uptime_secs,
            free_memory_bytes: t.free_memory,
            total_memory_bytes: t.total_memory,
            free_disk_bytes: t.free_disk,
            daemon_resident_bytes: t.daemon_resident,
            modules: t
                .modules
                .iter()
                .map(|m| TelemetryModule {
                    id: m.id.clone(),
                    version: m.version.clone(),
                    isolation: m.isolation.word(),
                    state: State::from(&m.state),
                    restarts: m.restarts,
                    started_at: m.started_at,
                    memory_bytes: m.memory,
                    cpu_ms: m.cpu_ms,
                })
                .collect(),
            workers: t
                .workers
                .iter()
                .map(|w| TelemetryWorker {
                    group: w.group.clone(),
                    pid: w.pid,
                    resident_bytes: w.resident,
                })
                .collect(),
        }
    }
}
