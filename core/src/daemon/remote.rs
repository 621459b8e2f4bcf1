//! Every request answered the one way, synchronously: by the socket
//! server (on its blocking pool for what touches disk) and by the MQTT
//! agent's device thread. Only what is bound to a socket connection
//! (following events) is refused here; the server handles it itself.

use super::supervisor::Supervisor;
use crate::protocol::{ErrorKind, RemoteError, Request, Response};

/// Answers one request; blocking (installs and updates run right here).
pub fn answer(sup: &Supervisor, request: Request) -> Result<Response, RemoteError> {
    match request {
        Request::Info => Ok(Response::Info(sup.info())),
        Request::List => Ok(Response::Modules(sup.list())),
        Request::Status { module } => sup.status(&module).map(|s| Response::Status(Box::new(s))),
        Request::Inspect { module } => sup.inspect(&module).map(Response::Inspect),
        Request::Logs { module, tail } => sup.logs(&module, tail).map(Response::Logs),
        Request::Follow { .. } | Request::Unfollow => Err(RemoteError::new(
            ErrorKind::BadRequest,
            "following events needs a socket connection; over MQTT, subscribe to the device's events topic",
        )),
        Request::Upload(chunk) => {
            if !sup.uploads().is_known(&chunk.sha256) {
                sup.admit_upload(chunk.total_len)?;
            }
            let (received, complete) = sup.uploads().accept(&chunk)?;
            Ok(Response::Uploaded { received, complete })
        }
        Request::Install(spec) => sup.install(&spec).map(Response::Module),
        Request::Update { module, spec } => sup.update(&module, &spec).map(Response::Module),
        Request::Rollback { module } => sup.rollback(&module).map(Response::Module),
        Request::Gc => Ok(Response::Collected(sup.gc())),
        Request::Start { module } => sup
            .start(&module)
            .and_then(|()| sup.summary(&module))
            .map(Response::Module),
        Request::Stop { module } => sup
            .stop(&module)
            .and_then(|()| sup.summary(&module))
            .map(Response::Module),
        Request::Restart { module } => sup
            .restart(&module)
            .and_then(|()| sup.summary(&module))
            .map(Response::Module),
        Request::Remove { module } => sup.remove(&module).map(|()| Response::Removed { module }),
        Request::RemovePurgingState { module } => {
            sup.remove_purging_state(&module).map(|()| Response::Removed { module })
        }
        Request::Kv { module, bucket, op } => sup.kv(&module, &bucket, op).map(Response::Kv),
    }
}
