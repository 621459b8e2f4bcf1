//! What the agent needs from the device it manages: answering requests
//! (the socket's verbs), staging artifact chunks, and its state. The
//! daemon's `Supervisor` is the real one; tests may bring their own.

use arcella_core::daemon::supervisor::Supervisor;
use arcella_core::daemon::uploads::Piece;
use arcella_core::digest::Sha256Digest;
use arcella_core::protocol::audit::Actor;
use arcella_core::protocol::telemetry::Telemetry;
use arcella_core::protocol::{DeviceReport, Event, RemoteError, Request, Response};
use std::path::PathBuf;

/// The device side of the agent.
pub trait Device: Send + Sync {
    /// Answers one request, as the local socket would.
    /// Answers `request` from `actor` (recorded in the audit trail).
    fn answer(&self, actor: &Actor, request: Request) -> Result<Response, RemoteError>;
    /// Writes one chunk of an incoming artifact; returns (bytes received,
    /// complete). A completed artifact has been checked against its sha256.
    fn stage(&self, piece: &Piece<'_>) -> Result<(u64, bool), RemoteError>;
    /// Chunk indexes an artifact in progress lacks (`None`: not started).
    fn missing(&self, sha256: &Sha256Digest) -> Option<Vec<u64>>;
    /// Whether an artifact is staged completely.
    fn is_staged(&self, sha256: &Sha256Digest) -> bool;
    /// The device's reported state.
    fn report(&self) -> DeviceReport;
    /// Module events for the events topic: state changes, and the log
    /// lines the fleet is sent (None: not reported).
    fn events(&self) -> Option<async_channel::Receiver<Event>>;
    /// Where the agent keeps what it applied (survives restarts).
    fn state_dir(&self) -> PathBuf;
    /// The engine fingerprints (plain and fuel-metered, as shown) the
    /// device loads artifacts of; picks a document's artifact variant.
    fn engines(&self) -> Vec<String> {
        Vec::new()
    }
    /// A reading of the device and its modules for the JSON mirror's
    /// telemetry (None: this device measures nothing).
    fn telemetry(&self) -> Option<Telemetry> {
        None
    }
}

impl Device for Supervisor {
    fn answer(&self, actor: &Actor, request: Request) -> Result<Response, RemoteError> {
        arcella_core::daemon::remote::answer(self, actor, request)
    }

    fn stage(&self, piece: &Piece<'_>) -> Result<(u64, bool), RemoteError> {
        if !self.uploads().is_known(&piece.sha256) {
            self.admit_upload(piece.total_len)?;
        }
        self.uploads().accept_piece(piece)
    }

    fn missing(&self, sha256: &Sha256Digest) -> Option<Vec<u64>> {
        self.uploads().missing(sha256)
    }

    fn is_staged(&self, sha256: &Sha256Digest) -> bool {
        self.uploads().is_complete(sha256)
    }

    fn report(&self) -> DeviceReport {
        Supervisor::report(self)
    }

    fn events(&self) -> Option<async_channel::Receiver<Event>> {
        Some(self.follow_fleet())
    }

    fn state_dir(&self) -> PathBuf {
        PathBuf::from(self.info().data_dir).join("fleet")
    }

    fn telemetry(&self) -> Option<Telemetry> {
        Some(Supervisor::telemetry(self))
    }

    fn engines(&self) -> Vec<String> {
        self.fingerprints().to_vec()
    }
}
