//! Every request answered the one way, synchronously: by the socket
//! server (on its blocking pool for what touches disk) and by the MQTT
//! agent's device thread. Only what is bound to a socket connection
//! (following events) is refused here; the server handles it itself.
//!
//! Every request that operates or changes something is written to the
//! audit trail here, with who asked and how it ended: one place for the
//! socket and MQTT alike.

use super::supervisor::{StartBegun, Supervisor};
use crate::protocol::audit::Actor;
use crate::protocol::{Access, ErrorKind, KvOp, RemoteError, Request, Response};

/// Answers one request from `actor`; blocking (installs and updates run
/// right here).
pub fn answer(sup: &Supervisor, actor: &Actor, request: Request) -> Result<Response, RemoteError> {
    let audited = audited(&request);
    let result = serve(sup, request);
    noted(sup, actor, audited, result)
}

/// Answers a `Start` the socket server began on its own thread
/// ([`Supervisor::begin_start`]); blocking (the record's save), audited
/// as [`answer`] audits.
pub fn finish_start(
    sup: &Supervisor,
    actor: &Actor,
    module: String,
    begun: Result<StartBegun, RemoteError>,
) -> Result<Response, RemoteError> {
    let audited = audited(&Request::Start { module: module.clone() });
    let result = begun
        .and_then(|begun| sup.finish_start(&module, begun))
        .and_then(|()| sup.summary(&module))
        .map(Response::Module);
    noted(sup, actor, audited, result)
}

/// `result`, once written to the audit trail if `audited`.
fn noted(
    sup: &Supervisor,
    actor: &Actor,
    audited: Option<(&'static str, Option<String>, String)>,
    result: Result<Response, RemoteError>,
) -> Result<Response, RemoteError> {
    if let Some((verb, module, detail)) = audited {
        let module = module.or_else(|| match &result {
            Ok(Response::Module(summary)) => Some(summary.id.clone()),
            _ => None,
        });
        let detail = match &result {
            Ok(Response::Module(summary)) => format!("version {}", summary.version),
            _ => detail,
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
fn audited(request: &Request) -> Option<(&'static str, Option<String>, String)> {
    if request.access() == Access::Read {
        return None;
    }
    let module = |m: &String| Some(m.clone());
    let none = String::new;
    Some(match request {
        Request::Upload(_) => return None,
        Request::Install(_) => ("install", None, none()),
        Request::Update { module: m, .. } => ("update", module(m), none()),
        Request::Start { module: m } => ("start", module(m), none()),
        Request::Stop { module: m } => ("stop", module(m), none()),
        Request::Restart { module: m } => ("restart", module(m), none()),
        Request::Remove { module: m } => ("remove", module(m), none()),
        Request::Rollback { module: m } => ("rollback", module(m), none()),
        Request::Gc => ("gc", None, none()),
        // Keys only: values may be secrets.
        Request::SetConfig { module: m, set, unset } => {
            let keys: Vec<&str> = set.iter().map(|(k, _)| k.as_str()).collect();
            let detail = format!("set [{}] unset [{}]", keys.join(", "), unset.join(", "));
            ("config", module(m), detail)
        }
        Request::RemovePurgingState { module: m } => ("remove", module(m), "and its key-value state".to_owned()),
        // Keys only: values may be secrets.
        Request::Kv { module: m, bucket, op } => {
            let what = match op {
                KvOp::Set { key, .. } => format!("set {key:?}"),
                KvOp::Delete { key } => format!("delete {key:?}"),
                KvOp::Import { entries } => format!("import {} entries", entries.len()),
                KvOp::List { .. } | KvOp::Get { .. } | KvOp::Export { .. } => "read".to_owned(),
            };
            ("kv", module(m), format!("bucket {bucket:?}: {what}"))
        }
        _ => ("change", None, none()),
    })
}

fn serve(sup: &Supervisor, request: Request) -> Result<Response, RemoteError> {
    match request {
        Request::Info => Ok(Response::Info(sup.info())),
        Request::Wiring => Ok(Response::Wiring(sup.wiring())),
        // Waits up to a second for workers' figures: never on an executor
        // (the socket server offloads it; see supervisor/telemetry.rs).
        Request::Telemetry => Ok(Response::Telemetry(sup.telemetry())),
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
        Request::GetConfig { module, key } => sup.config(&module, key.as_deref()).map(Response::Config),
        Request::SetConfig { module, set, unset } => sup.set_config(&module, &set, &unset).map(Response::Config),
        Request::Audit(query) => sup
            .audit()
            .query(query.module.as_deref(), query.since_ms, query.limit as usize)
            .map(Response::Audit)
            .map_err(|e| RemoteError::new(ErrorKind::Internal, format!("cannot read the audit trail: {e}"))),
        Request::RemovePurgingState { module } => {
            sup.remove_purging_state(&module).map(|()| Response::Removed { module })
        }
        Request::Kv { module, bucket, op } => sup.kv(&module, &bucket, op).map(Response::Kv),
    }
}
