//! Remote requests signed by an operator key: the signature covers the
//! device it is for, the operator it answers, a counter, the request id
//! and the request itself, so a captured request cannot be replayed on
//! this device (the counter must grow) or any other (the device id).

use super::{SigningError, TrustPolicy, sign_statement};
use crate::protocol::fleet::{ArtifactSignature, CommandAuth, RemoteCommand};
use crate::protocol::{Request, RequestId};
use ed25519_dalek::SigningKey;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};

const CONTEXT: &[u8] = b"arcella-request-v1:";

/// Exactly what is signed, as postcard bytes.
#[derive(Serialize)]
struct Statement<'a> {
    device: &'a str,
    operator: &'a str,
    counter: u64,
    id: RequestId,
    request: &'a Request,
    artifact_signature: Option<&'a ArtifactSignature>,
}

fn statement(device: &str, operator: &str, counter: u64, command: &RemoteCommand) -> Vec<u8> {
    let statement = Statement {
        device,
        operator,
        counter,
        id: command.id,
        request: &command.request,
        artifact_signature: command.artifact_signature.as_ref(),
    };
    // Serializing plain data into a Vec cannot fail.
    postcard::to_stdvec(&statement).unwrap_or_default()
}

/// Signs `command` for `device`, answered to `operator`, with `counter`.
pub fn sign(key: &SigningKey, device: &str, operator: &str, counter: u64, command: &mut RemoteCommand) {
    let signature = sign_statement(key, CONTEXT, &statement(device, operator, counter, command));
    command.auth = Some(CommandAuth { counter, signature });
}

/// Checks a command's signature for this device and operator; returns the
/// signer's key and counter, which the caller must check against the last
/// counter it accepted from that key.
pub fn verify(
    policy: &TrustPolicy,
    device: &str,
    operator: &str,
    command: &RemoteCommand,
) -> Result<([u8; 32], u64), SigningError> {
    let auth = command.auth.as_ref().ok_or(SigningError::Unsigned("the request"))?;
    let message = statement(device, operator, auth.counter, command);
    policy.verify("the request", CONTEXT, &message, &auth.signature)?;
    Ok((auth.signature.key, auth.counter))
}

/// A counter for the next signed request: the time in microseconds, and
/// always more than the last one this process handed out, so requests of
/// one run and of runs after it keep growing without any state on disk.
pub fn next_counter() -> u64 {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    let mut last = LAST.load(Ordering::SeqCst);
    loop {
        let next = now.max(last.saturating_add(1));
        match LAST.compare_exchange(last, next, Ordering::SeqCst, Ordering::SeqCst) {
            Ok(_) => return next,
            Err(seen) => last = seen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::generate;

    fn policy(key: &SigningKey) -> TrustPolicy {
        TrustPolicy {
            trusted_keys: vec![key.verifying_key().to_bytes()],
            allow_unsigned: false,
        }
    }

    fn stop(id: RequestId) -> RemoteCommand {
        RemoteCommand {
            id,
            request: Request::Stop { module: "m".into() },
            auth: None,
            artifact_signature: None,
        }
    }

    #[test]
    fn a_signed_request_verifies_only_for_its_device_operator_and_content() {
        let key = generate().unwrap();
        let mut command = stop(7);
        sign(&key, "gw1", "ops", 42, &mut command);
        let policy = policy(&key);
        assert_eq!(
            verify(&policy, "gw1", "ops", &command).unwrap(),
            (key.verifying_key().to_bytes(), 42)
        );
        // Replayed on another device, or its answer sent to someone else.
        assert!(matches!(
            verify(&policy, "gw2", "ops", &command),
            Err(SigningError::Invalid { .. })
        ));
        assert!(matches!(
            verify(&policy, "gw1", "eve", &command),
            Err(SigningError::Invalid { .. })
        ));
        // Another module, another id, a forged counter.
        let mut other = command.clone();
        other.request = Request::Stop { module: "n".into() };
        assert!(verify(&policy, "gw1", "ops", &other).is_err());
        let mut other = command.clone();
        other.id = 8;
        assert!(verify(&policy, "gw1", "ops", &other).is_err());
        let mut other = command.clone();
        other.auth.as_mut().unwrap().counter = 43;
        assert!(verify(&policy, "gw1", "ops", &other).is_err());
        // An artifact signature slipped in afterwards.
        let mut other = command.clone();
        other.artifact_signature = Some(crate::signing::sign(&key, &[0; 32]));
        assert!(verify(&policy, "gw1", "ops", &other).is_err());
        // A truncated signature.
        let mut other = command.clone();
        other.auth.as_mut().unwrap().signature.signature.truncate(63);
        assert!(verify(&policy, "gw1", "ops", &other).is_err());
    }

    #[test]
    fn unsigned_and_untrusted_requests_are_refused_by_name() {
        let key = generate().unwrap();
        let stranger = generate().unwrap();
        let mut command = stop(1);
        assert!(matches!(
            verify(&policy(&key), "gw1", "ops", &command),
            Err(SigningError::Unsigned(_))
        ));
        sign(&stranger, "gw1", "ops", 1, &mut command);
        let error = verify(&policy(&key), "gw1", "ops", &command).unwrap_err();
        assert!(error.to_string().contains("does not trust"), "{error}");
    }

    #[test]
    fn counters_always_grow() {
        let a = next_counter();
        let b = next_counter();
        assert!(b > a);
    }
}
