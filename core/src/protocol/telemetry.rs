//! What a device measures of itself and its modules, periodically, for
//! the fleet (the JSON mirror's `telemetry` topic, docs/mqtt.md).

use super::{Isolation, ModuleState};
use serde::{Deserialize, Serialize};

/// One reading of the device and its modules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Telemetry {
    /// When it was taken, Unix seconds.
    pub at: u64,
    pub uptime_secs: u64,
    /// Bytes of memory available to new work (`MemAvailable`).
    pub free_memory: u64,
    /// Bytes of memory the device has (`MemTotal`).
    pub total_memory: u64,
    /// Bytes free on the data directory's file system.
    pub free_disk: u64,
    /// The daemon's resident memory.
    pub daemon_resident: u64,
    pub modules: Vec<ModuleTelemetry>,
    /// Each worker process: its group and resident memory.
    pub workers: Vec<WorkerTelemetry>,
}

/// One module's share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleTelemetry {
    pub id: String,
    pub version: String,
    pub isolation: Isolation,
    pub state: ModuleState,
    /// Restarts since the daemon started (the restart policy's).
    pub restarts: u32,
    /// Unix seconds of its last start.
    pub started_at: Option<u64>,
    /// Bytes of linear memory its running instance holds (`None`: not
    /// running, or not known).
    pub memory: Option<u64>,
    /// Milliseconds its running instance's code has run since it started
    /// (`None`: not running, or not known).
    pub cpu_ms: Option<u64>,
}

/// One worker process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerTelemetry {
    pub group: String,
    pub pid: u32,
    pub resident: u64,
}
