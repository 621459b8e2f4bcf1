//! Who may do what over MQTT (docs/security.md, "Authorization"). Every
//! command passes here before the device answers it:
//!
//! - reads pass on the broker's ACL alone, unless `[mqtt] signed_reads`;
//! - operate and change requests carry an operator's Ed25519 signature
//!   over (device, operator, counter, id, request), by a trusted key, with
//!   a counter above every one accepted from that key (kept on disk, so a
//!   restart does not reopen old requests to replay);
//! - an install or update also carries an artifact signed by a trusted
//!   key (unless `allow_unsigned`), and may not put code into the
//!   daemon's process (`trusted = true`, `isolation = "main"`) unless
//!   `allow_remote_trusted`.
//!
//! Desired-state documents pass the same deployment check
//! ([`remote_deployment_allowed`]) in the reconciler.

use crate::device::Device;
use arcella_core::digest;
use arcella_core::manifest;
use arcella_core::protocol::audit::Actor;
use arcella_core::protocol::fleet::RemoteCommand;
use arcella_core::protocol::{Access, ErrorKind, Isolation, RemoteError, Request, Response};
use arcella_core::signing::{self, TrustPolicy};
use std::collections::BTreeMap;
use std::path::PathBuf;

const COUNTERS_FILE: &str = "counters";

/// What the device's config says about remote requests.
#[derive(Debug, Clone, Default)]
pub struct GatePolicy {
    pub trust: TrustPolicy,
    pub signed_reads: bool,
    pub allow_remote_trusted: bool,
}

/// The device's side of request authorization.
#[derive(Debug)]
pub struct Gate {
    device_id: String,
    policy: GatePolicy,
    dir: PathBuf,
    /// The last counter accepted per trusted key.
    counters: BTreeMap<[u8; 32], u64>,
}

fn denied(message: String) -> RemoteError {
    RemoteError::new(ErrorKind::PermissionDenied, message)
}

impl Gate {
    /// The gate of device `device_id`, with the counters kept in `dir`
    /// (those of keys no longer trusted are forgotten).
    pub fn new(device_id: &str, policy: GatePolicy, dir: PathBuf) -> Self {
        let counters: BTreeMap<[u8; 32], u64> = std::fs::read(dir.join(COUNTERS_FILE))
            .ok()
            .and_then(|bytes| postcard::from_bytes(&bytes).ok())
            .unwrap_or_default();
        let counters = counters
            .into_iter()
            .filter(|(key, _)| policy.trust.trusted_keys.contains(key))
            .collect();
        Self {
            device_id: device_id.to_owned(),
            policy,
            dir,
            counters,
        }
    }

    /// Whether `command` from `operator` may be answered; the refusal says
    /// why and what to do. A refusal is logged (the audit trail).
    pub fn admit(&mut self, operator: &str, command: &RemoteCommand, device: &dyn Device) -> Result<(), RemoteError> {
        let result = self.check(operator, command, device);
        if let Err(e) = &result {
            log::warn!(
                "refused an MQTT request from operator `{operator}` ({}, {}): {}",
                verb(&command.request),
                command.request.access(),
                e.message
            );
        }
        result
    }

    fn check(&mut self, operator: &str, command: &RemoteCommand, device: &dyn Device) -> Result<(), RemoteError> {
        let access = command.request.access();
        if access == Access::Read && !self.policy.signed_reads && command.auth.is_none() {
            return Ok(());
        }
        let (key, counter) =
            signing::request::verify(&self.policy.trust, &self.device_id, operator, command).map_err(|e| {
                denied(format!(
                    "{e}; {access} requests over MQTT must be signed by a key in the device's [mqtt] trusted_keys \
                     (arcella --broker … --device … --key KEY.key)"
                ))
            })?;
        let last = self.counters.get(&key).copied().unwrap_or(0);
        if counter <= last {
            return Err(denied(format!(
                "replayed or reordered request: its counter {counter} is not above {last}, the last accepted from \
                 key {}; sign a new request",
                digest::hex(&key)
            )));
        }
        if let Request::Install(spec) | Request::Update { spec, .. } = &command.request {
            self.policy
                .trust
                .check(&spec.upload, command.artifact_signature.as_ref())
                .map_err(|e| denied(format!("{e}; nothing installed")))?;
            match &spec.deployment_toml {
                Some(text) => remote_deployment_allowed(text, self.policy.allow_remote_trusted).map_err(denied)?,
                None => self.update_keeps_worker(&command.request, device)?,
            }
        }
        // Taken before acting: a request that is answered is never
        // answered twice, even across a restart.
        self.counters.insert(key, counter);
        self.save();
        Ok(())
    }

    /// An update that keeps the current deployment may not replace the
    /// code of a module running in the daemon's process.
    fn update_keeps_worker(&self, request: &Request, device: &dyn Device) -> Result<(), RemoteError> {
        let Request::Update { module, .. } = request else {
            return Ok(());
        };
        if self.policy.allow_remote_trusted {
            return Ok(());
        }
        match device.answer(&Actor::Daemon, Request::Status { module: module.clone() }) {
            Ok(Response::Status(status)) if status.summary.isolation == Isolation::Main => Err(denied(format!(
                "`{module}` runs in the daemon's process (isolation = \"main\"); a remote update may not replace \
                 its code unless the device's config sets [mqtt] allow_remote_trusted = true"
            ))),
            _ => Ok(()),
        }
    }

    fn save(&self) {
        let write = std::fs::create_dir_all(&self.dir).and_then(|()| {
            let bytes = postcard::to_stdvec(&self.counters).map_err(std::io::Error::other)?;
            arcella_core::sys::fs::write_atomic(&self.dir, COUNTERS_FILE, &bytes).map(|_| ())
        });
        if let Err(e) = write {
            // Still refused while this process lives; only a restart
            // before the disk recovers would forget it.
            log::error!(
                "cannot save the request counters in {}: {e}",
                self.dir.join(COUNTERS_FILE).display()
            );
        }
    }
}

/// Whether a deployment that arrived over MQTT may be installed: not into
/// the daemon's process unless the device allows it. An unparseable one
/// passes here and is refused by the install itself, with its place.
pub fn remote_deployment_allowed(deployment_toml: &str, allow_remote_trusted: bool) -> Result<(), String> {
    if allow_remote_trusted {
        return Ok(());
    }
    let Ok(deployment) = manifest::parse_deployment(deployment_toml, manifest::DEPLOYMENT_FILE) else {
        return Ok(());
    };
    if deployment.trusted || deployment.isolation == Isolation::Main {
        return Err(
            "a remote deployment may not set trusted = true or isolation = \"main\" (code in the daemon's own \
             process); install it through the local socket, or set [mqtt] allow_remote_trusted = true on the device"
                .to_owned(),
        );
    }
    Ok(())
}

/// The request's verb, for the log.
fn verb(request: &Request) -> String {
    let debug = format!("{request:?}");
    debug
        .split(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or_default()
        .to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_deployments_stay_out_of_the_daemons_process_unless_allowed() {
        for text in ["trusted = true\n", "trusted = true\nisolation = \"main\"\n"] {
            let error = remote_deployment_allowed(text, false).unwrap_err();
            assert!(error.contains("allow_remote_trusted"), "{error}");
            remote_deployment_allowed(text, true).unwrap();
        }
        remote_deployment_allowed("kind = \"service\"\n", false).unwrap();
    }

    #[test]
    fn the_verb_is_named_in_the_log() {
        assert_eq!(verb(&Request::Stop { module: "x".into() }), "stop");
        assert_eq!(verb(&Request::Gc), "gc");
        let get = Request::GetConfig {
            module: "x".into(),
            key: None,
        };
        let set = Request::SetConfig {
            module: "x".into(),
            set: vec![("k".into(), "v".into())],
            unset: Vec::new(),
        };
        assert_eq!(verb(&get), "getconfig");
        assert_eq!(verb(&set), "setconfig");
        assert_eq!(get.access(), arcella_core::protocol::Access::Read);
        assert_eq!(set.access(), arcella_core::protocol::Access::Change);
        let kv = Request::Kv {
            module: "x".into(),
            bucket: "default".into(),
            op: arcella_core::protocol::KvOp::List { after: None },
        };
        assert_eq!(verb(&kv), "kv");
        assert_eq!(
            verb(&Request::RemovePurgingState { module: "x".into() }),
            "removepurgingstate"
        );
    }
}
