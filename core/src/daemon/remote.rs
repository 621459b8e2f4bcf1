//! Every request answered the one way, synchronously: by the socket
//! server (on its blocking pool for what touches disk) and by the MQTT
//! agent's device thread. Only what is bound to a socket connection
//! (following events) is refused here; the server handles it itself.
//!
//! Every request that operates or changes something is written to the
//! audit trail here, with who asked and how it ended: one place for the
//! socket and MQTT alike.

use super::supervisor::Supervisor;
use crate::protocol::audit::Actor;
use crate::protocol::{Access, ErrorKind, RemoteError, Request, Response};

/// Answers one request from `actor`; blocking (installs and updates run
/// right here).
pub fn answer(sup: &Supervisor, actor: &Actor, request: Request) -> Result<Response, RemoteError> {
    let audited = audited(&request);
    let result = serve(sup, request);
    if let Some((verb, module)) = audited {
        let module = module.or_else(|| match &result {
            Ok(Response::Module(summary)) => Some(summary.id.clone()),
            _ => None,
        });
        let detail = match &result {
            Ok(Response::Module(summary)) => format!("version {}", summary.version),
            _ => String::new(),
        };
        let outcome = result.as_ref().map(drop).map_err(|e| e.message.as_str());
        sup.audit()
            .note(actor.clone(), verb, module.as_deref(), outcome, &detail);
    }
    result
}

/// The verb and module of a request the trail records: everything that
/// operates or changes, but upload chunks (the install that uses them is
/// recorded).
fn audited(request: &Request) -> Option<(&'static str, Option<String>)> {
    if request.access() == Access::Read {
        return None;
    }
    let module = |m: &String| Some(m.clone());
    Some(match request {
        Request::Upload(_) => return None,
        Request::Install(_) => ("install", None),
        Request::Update { module: m, .. } => ("update", module(m)),
        Request::Start { module: m } => ("start", module(m)),
        Request::Stop { module: m } => ("stop", module(m)),
        Request::Restart { module: m } => ("restart", module(m)),
        Request::Remove { module: m } => ("remove", module(m)),
        Request::Rollback { module: m } => ("rollback", module(m)),
        Request::Gc => ("gc", None),
        _ => ("change", None),
    })
}

fn serve(sup: &Supervisor, request: Request) -> Result<Response, RemoteError> {
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
        Request::Audit(query) => sup
            .audit()
            .query(query.module.as_deref(), query.since_ms, query.limit as usize)
            .map(Response::Audit)
            .map_err(|e| RemoteError::new(ErrorKind::Internal, format!("cannot read the audit trail: {e}"))),
    }
}
