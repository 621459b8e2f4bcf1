//! The management protocol's messages. No I/O here: framing is in
//! `frame.rs`, transports (Unix socket, MQTT, worker IPC) elsewhere.
//!
//! Wire rules (docs/protocol.md): every message is postcard-encoded inside
//! a length-prefixed frame. A connection opens with [`Hello`] →
//! [`HelloReply`], whose layouts never change, so peers of any version can
//! tell each other apart. After that both sides speak exactly
//! [`PROTOCOL_VERSION`]: enum variants are only ever appended, and any
//! change to an existing message bumps the version.
//!
//! [`PROTOCOL_VERSION`]: super::PROTOCOL_VERSION

use serde::{Deserialize, Serialize};

/// Marks a Hello frame: "ARCP".
pub const HELLO_MAGIC: [u8; 4] = *b"ARCP";

/// A client's first frame. Its layout is frozen across versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub magic: [u8; 4],
    pub version: u16,
    /// Who is speaking, for logs: `arcella-cli 0.1.0`, `mqtt-agent`, ….
    pub peer: String,
}

/// The daemon's answer to [`Hello`]. Its layout is frozen across versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HelloReply {
    Welcome { version: u16, daemon: String },
    Refused { daemon_version: u16, reason: String },
}

/// Chosen by the client, echoed in the response; lets a client pipeline.
pub type RequestId = u32;

/// Every frame a client sends after the handshake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientMessage {
    pub id: RequestId,
    pub request: Request,
}

/// Every frame the daemon sends after the handshake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerMessage {
    /// The answer to request `id`.
    Response {
        id: RequestId,
        result: Result<Response, RemoteError>,
    },
    /// Pushed to clients that asked to [`Request::Follow`].
    Event(Event),
    /// About the connection, not one request (a frame that did not decode).
    Error(RemoteError),
}

/// What a client can ask.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Daemon version, engine fingerprint, board, data dir, uptime.
    Info,
    /// Every installed module.
    List,
    Status {
        module: String,
    },
    /// Kind, exports/imports (a component's WIT world), fingerprint, digest.
    Inspect {
        module: String,
    },
    /// The last `tail` captured log lines of a module (0: all kept).
    Logs {
        module: String,
        tail: u32,
    },
    /// Push [`Event`]s for one module (or all) to this connection.
    Follow {
        module: Option<String>,
    },
    Unfollow,
    /// One chunk of a file (artifact or .wasm) to install; see [`Upload`].
    Upload(Upload),
    Install(InstallSpec),
    Update {
        module: String,
        spec: InstallSpec,
    },
    Start {
        module: String,
    },
    Stop {
        module: String,
    },
    Restart {
        module: String,
    },
    Remove {
        module: String,
    },
    /// Makes the previous version current again (and runs it, if the
    /// module should run).
    Rollback {
        module: String,
    },
    /// Deletes artifacts and stale uploads nothing refers to.
    Gc,
    /// A module's runtime configuration (`wasi:config`): every key, or
    /// only `key` (docs/cli.md, `config`).
    GetConfig {
        module: String,
        key: Option<String>,
    },
    /// Sets (`set`) and removes (`unset`) operator values of a module's
    /// runtime configuration, layered over its deployment's `[config]`;
    /// all or nothing. A running instance reads the new values at once.
    SetConfig {
        module: String,
        set: Vec<(String, String)>,
        unset: Vec<String>,
    },
    /// Records of the audit trail (`daemon/audit`).
    Audit(AuditQuery),
    /// `remove --purge-state`: removes the module (if installed) and
    /// deletes its key-value state, which `Remove` keeps.
    RemovePurgingState {
        module: String,
    },
    /// The operator's access to a module's key-value bucket (`arcella kv`).
    Kv {
        module: String,
        bucket: String,
        op: super::KvOp,
    },
    /// Who provides which interface to whom (typed calls).
    Wiring,
    /// A reading of the device and its modules: memory, disk, uptime;
    /// each module's state, restarts, memory and CPU time (`arcella
    /// telemetry`, the fleet's periodic report).
    Telemetry,
}

/// Which audit records to return: the last `limit` (at most 128) about
/// `module` (or all) since `since_ms` (milliseconds since the Unix epoch).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditQuery {
    pub module: Option<String>,
    pub since_ms: Option<u64>,
    pub limit: u32,
}

/// What a request may do: the classes of the authorization model
/// (docs/security.md). Every verb added later that changes code, grants
/// or state is `Change`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Access {
    /// Looks, changes nothing: info, list, status, inspect, logs, follow.
    Read,
    /// Runs or halts what is installed: start, stop, restart.
    Operate,
    /// Changes code or state: upload, install, update, rollback, remove, gc.
    Change,
}

impl Request {
    /// The class this request falls in.
    pub fn access(&self) -> Access {
        match self {
            Request::Info
            | Request::List
            | Request::Status { .. }
            | Request::Inspect { .. }
            | Request::Logs { .. }
            | Request::Follow { .. }
            | Request::Unfollow
            | Request::GetConfig { .. }
            | Request::Wiring
            | Request::Telemetry
            | Request::Audit(_) => Access::Read,
            Request::Start { .. } | Request::Stop { .. } | Request::Restart { .. } => Access::Operate,
            Request::Upload(_)
            | Request::Install(_)
            | Request::Update { .. }
            | Request::Remove { .. }
            | Request::Rollback { .. }
            | Request::Gc
            | Request::SetConfig { .. } => Access::Change,
            Request::RemovePurgingState { .. } => Access::Change,
            Request::Kv { op, .. } if op.writes() => Access::Change,
            Request::Kv { .. } => Access::Read,
        }
    }
}

impl std::fmt::Display for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Access::Read => "read",
            Access::Operate => "operate",
            Access::Change => "change",
        })
    }
}

/// A chunk of a file being uploaded, addressed by the whole file's sha256.
/// Chunks may come in any order and be repeated; the daemon streams them to
/// disk and verifies the digest when `total_len` bytes have arrived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upload {
    pub sha256: [u8; 32],
    pub total_len: u64,
    pub offset: u64,
    pub data: Vec<u8>,
}

/// What to install (or update to): an uploaded file plus its manifests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallSpec {
    /// sha256 of a completed [`Upload`].
    pub upload: [u8; 32],
    /// `component.toml` text; optional for components. In an update,
    /// `None` keeps the current version's.
    pub component_toml: Option<String>,
    /// `deployment.toml` text; required to install. In an update, `None`
    /// keeps the current version's.
    pub deployment_toml: Option<String>,
}

/// Successful answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    Info(DaemonInfo),
    Modules(Vec<ModuleSummary>),
    /// Boxed: the largest answer, and rare.
    Status(Box<ModuleStatus>),
    Inspect(ModuleInspect),
    Logs(Vec<LogLine>),
    /// Bytes of the upload received so far; `complete` once verified.
    Uploaded {
        received: u64,
        complete: bool,
    },
    /// The module after an install/update/start/stop/restart.
    Module(ModuleSummary),
    /// The module was removed.
    Removed {
        module: String,
    },
    Following,
    Unfollowed,
    /// What `Gc` deleted.
    Collected(Collected),
    /// A module's runtime configuration (after a `SetConfig`, the new one).
    Config(ModuleConfig),
    /// Audit records, oldest first.
    Audit(Vec<crate::protocol::audit::AuditRecord>),
    /// The answer to [`Request::Kv`].
    Kv(super::KvAnswer),
    Wiring(Wiring),
    Telemetry(super::telemetry::Telemetry),
}

/// Typed calls on a device: the running providers, the links of the
/// running consumers, and the modules waiting for a provider.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wiring {
    pub providers: Vec<WiringProvider>,
    pub links: Vec<WiringLink>,
    /// (module, what it waits for).
    pub waiting: Vec<(String, String)>,
}

/// One running provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WiringProvider {
    pub module: String,
    pub version: String,
    /// `package:name/interface@version`, each.
    pub exports: Vec<String>,
    /// `daemon` or `worker GROUP`.
    pub process: String,
}

/// One import of a running consumer, linked to a provider module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WiringLink {
    pub consumer: String,
    pub import: String,
    pub provider: String,
    /// The consumer's process: `daemon` or `worker GROUP`.
    pub process: String,
}

/// A module's runtime configuration as its guest reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleConfig {
    pub module: String,
    /// Sorted by key.
    pub entries: Vec<ConfigEntry>,
    /// The change restarted the module (`[restart] on_config_change`).
    pub restarted: bool,
}

/// One key of a module's runtime configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigEntry {
    pub key: String,
    pub value: String,
    pub source: ConfigSource,
}

/// Where a configuration value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConfigSource {
    /// The current version's deployment.toml `[config]`.
    Deployment,
    /// `arcella config set` (kept across updates and daemon restarts).
    Operator,
}

/// What a device reports about itself (retained on MQTT, docs/mqtt.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceReport {
    pub info: DaemonInfo,
    /// Bytes free on the data directory's file system.
    pub free_disk: u64,
    /// Bytes of memory available (MemAvailable).
    pub free_memory: u64,
    pub modules: Vec<ModuleSummary>,
    /// Each module's health, in the order of `modules`.
    pub health: Vec<ModuleHealth>,
    /// The fleet group this device belongs to (`[mqtt] group`).
    pub group: Option<String>,
}

/// How a module is faring, for a fleet view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleHealth {
    pub id: String,
    /// In the state it should be in, and not given up on.
    pub healthy: bool,
    pub restarts: u32,
    pub last_error: Option<String>,
}

/// What a garbage collection freed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Collected {
    /// Code digests (hex) of the artifacts deleted.
    pub artifacts: Vec<String>,
    /// Bytes freed in all (artifacts and uploads).
    pub bytes: u64,
    /// Stale uploads deleted.
    pub uploads: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonInfo {
    pub version: String,
    pub protocol: u16,
    /// The engine fingerprints artifacts must be compiled for, as text:
    /// `PLAIN, with fuel metering METERED` (the device loads both).
    pub fingerprint: String,
    pub target: String,
    pub board: String,
    pub data_dir: String,
    pub uptime_secs: u64,
    pub modules: u32,
    /// The interfaces this daemon provides to components, each as
    /// `package/interface@version` (`host::provided`).
    pub interfaces: Vec<String>,
}

/// A command runs to completion; a service runs until stopped; a
/// provider serves typed calls from other modules until stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ModuleKind {
    Command,
    Service,
    Provider,
}

/// Where a module runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Isolation {
    /// In the daemon's process (trusted modules only).
    Main,
    /// In the worker process of its group.
    Worker,
}

/// What the daemon keeps a module at across restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DesiredState {
    Running,
    Stopped,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ModuleState {
    Stopped,
    Starting,
    Running,
    Stopping,
    /// A command finished (or a service ended by itself) with this code.
    Exited {
        code: i32,
    },
    /// Waiting `in_ms` before restart attempt `attempt`.
    BackingOff {
        attempt: u32,
        in_ms: u64,
    },
    /// Given up: the restart policy says no more, or it cannot start.
    Failed {
        reason: String,
    },
    /// Desired running, but an import has no provider it may be linked
    /// to yet (`reason` names the interface); it starts when one appears.
    Waiting {
        reason: String,
    },
}

impl ModuleState {
    /// The state as one word, as `--json` and the MQTT JSON mirror show it.
    pub fn word(&self) -> &'static str {
        match self {
            Self::Stopped => "stopped",
            Self::Starting => "starting",
            Self::Running => "running",
            Self::Stopping => "stopping",
            Self::Exited { .. } => "exited",
            Self::BackingOff { .. } => "backing_off",
            Self::Failed { .. } => "failed",
            Self::Waiting { .. } => "waiting",
        }
    }
}

impl ModuleKind {
    /// `command`, `service` or `provider`.
    pub fn word(self) -> &'static str {
        match self {
            Self::Command => "command",
            Self::Service => "service",
            Self::Provider => "provider",
        }
    }
}

impl Isolation {
    /// `main` or `worker`.
    pub fn word(self) -> &'static str {
        match self {
            Self::Main => "main",
            Self::Worker => "worker",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleSummary {
    pub id: String,
    pub version: String,
    pub kind: ModuleKind,
    pub isolation: Isolation,
    pub state: ModuleState,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleStatus {
    pub summary: ModuleSummary,
    pub desired: DesiredState,
    /// Code digest of the running artifact (hex).
    pub artifact: String,
    pub previous_version: Option<String>,
    pub restarts: u32,
    pub last_exit: Option<i32>,
    pub last_error: Option<String>,
    /// Unix seconds of the last start.
    pub started_at: Option<u64>,
    /// The worker process hosting the running instance (worker isolation).
    pub worker: Option<WorkerHost>,
    /// The last update or rollback, and how it ended.
    pub last_update: Option<UpdateReport>,
    /// Its use of the message bus (`wasi:messaging`), if any.
    pub messaging: Option<super::messaging::MessagingStats>,
    /// The engine fingerprint its artifact was compiled for (as shown).
    pub engine: Option<String>,
}

/// An update (or rollback) of a module and its outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateReport {
    /// The version before the change.
    pub from: String,
    /// The version the change put in place.
    pub to: String,
    /// Unix seconds of the change.
    pub at: u64,
    pub outcome: UpdateOutcome,
}

/// How an update ended (so far).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum UpdateOutcome {
    /// The new version runs in its health window until `until` (Unix
    /// seconds); a failure before then rolls back.
    Probation { until: u64 },
    /// The new version passed its health window (or was not started).
    Succeeded,
    /// The new version failed in its window; `from` runs again.
    RolledBack { reason: String },
    /// `arcella rollback` put `to` (the previous version) back by hand.
    Reverted,
}

/// A worker process, as `status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerHost {
    pub group: String,
    pub pid: u32,
    pub resident_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleInspect {
    pub id: String,
    /// "core module" or "component".
    pub artifact_kind: String,
    pub fingerprint: String,
    pub code_sha256: String,
    pub source_sha256: String,
    pub exports: Vec<String>,
    pub imports: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogStream {
    Stdout,
    Stderr,
    /// Written by the daemon about the module (started, exited, trapped).
    Daemon,
    /// Sent through `wasi:logging` at this level (`context: message`).
    Logging(LogLevel),
}

/// A `wasi:logging` level, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
    Critical,
}

impl LogLevel {
    /// The word used by `--level` and `--json`.
    pub fn word(self) -> &'static str {
        match self {
            Self::Trace => "trace",
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error => "error",
            Self::Critical => "critical",
        }
    }
}

impl LogStream {
    /// The level a line counts as for `logs --level`: its own for
    /// `wasi:logging` lines; stdout and the daemon's notes are `info`,
    /// stderr is `warn` (docs/cli.md).
    pub fn level(self) -> LogLevel {
        match self {
            Self::Logging(level) => level,
            Self::Stdout | Self::Daemon => LogLevel::Info,
            Self::Stderr => LogLevel::Warn,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    pub module: String,
    pub stream: LogStream,
    /// Unix milliseconds.
    pub at_ms: u64,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    State { module: String, state: ModuleState },
    Log(LogLine),
}

/// An error that crosses the wire: a kind a program can act on, and a
/// message a person can.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct RemoteError {
    pub kind: ErrorKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorKind {
    /// The frame or request was malformed or not understood.
    BadRequest,
    /// No such module (or upload).
    NotFound,
    /// A module with that id is already installed.
    AlreadyExists,
    /// component.toml / deployment.toml refused.
    InvalidManifest,
    /// The artifact is damaged, for another engine, or not wasm.
    InvalidArtifact,
    /// The request is valid but cannot be served now or by this build.
    Unavailable,
    /// The peer is not allowed to manage this daemon.
    PermissionDenied,
    /// Disk or other resource budget exhausted.
    ResourceExhausted,
    /// A bug or an I/O failure inside the daemon.
    Internal,
}

impl RemoteError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}
