//! A rollout's state, retained on the broker (`…/group/<G>/rollout`)
//! and signed by the operator who runs it: an interrupted rollout
//! resumes from it, `fleet rollout status` reads it, and the JSON mirror
//! shows it.

use super::plan::Plan;
use crate::operator::{Operator, OperatorError};
use crate::{topics, wire};
use arcella_core::protocol::fleet::{DesiredModule, SignedDocument};
use arcella_core::signing::{TrustPolicy, record};
use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// Where a rollout is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RolloutPhase {
    /// Wave `index` (from 0) is being updated, or soaking until `soak_until`
    /// (Unix seconds).
    Wave {
        index: u32,
        soak_until: Option<u64>,
    },
    /// Every wave passed: the group's document is being changed.
    Finishing,
    /// The group's document has the new entry.
    Done,
    /// Failures passed the threshold (or an operator aborted): the devices
    /// already updated are being returned to the previous document.
    Aborting {
        reason: String,
    },
    Aborted {
        reason: String,
    },
}

impl RolloutPhase {
    /// Whether nothing more will happen.
    pub fn is_over(&self) -> bool {
        matches!(self, RolloutPhase::Done | RolloutPhase::Aborted { .. })
    }

    pub fn word(&self) -> &'static str {
        match self {
            RolloutPhase::Wave { soak_until: None, .. } => "updating",
            RolloutPhase::Wave { .. } => "soaking",
            RolloutPhase::Finishing => "finishing",
            RolloutPhase::Done => "done",
            RolloutPhase::Aborting { .. } => "aborting",
            RolloutPhase::Aborted { .. } => "aborted",
        }
    }
}

/// Where one device of a rollout is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeviceStatus {
    /// Its wave has not come.
    Waiting,
    /// Its document has the new entry; no verdict yet.
    Updating,
    /// Healthy with the new entry (through its wave's soak once that is over).
    Healthy,
    /// Counted against the rollout (`DeviceProgress::failure` says why).
    Failed,
    /// Returned to the previous document (abort).
    Restored,
    /// Its return was published but not confirmed: why.
    RestorePending { reason: String },
}

impl DeviceStatus {
    pub fn word(&self) -> &'static str {
        match self {
            DeviceStatus::Waiting => "waiting",
            DeviceStatus::Updating => "updating",
            DeviceStatus::Healthy => "healthy",
            DeviceStatus::Failed => "failed",
            DeviceStatus::Restored => "restored",
            DeviceStatus::RestorePending { .. } => "restore_pending",
        }
    }

    pub fn reason(&self) -> Option<&str> {
        match self {
            DeviceStatus::RestorePending { reason } => Some(reason),
            _ => None,
        }
    }
}

/// One device's part in a rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceProgress {
    pub wave: u32,
    /// The version of its own document that first carried the new entry.
    pub version: Option<u64>,
    /// The version of its own document that took the entry out again
    /// (abort, or the end, when the group's document has it).
    pub restore_version: Option<u64>,
    pub status: DeviceStatus,
    /// Why it counts against the rollout: failed, rolled back, refused
    /// the document, offline in its wave's soak, or no verdict in time.
    /// Kept once the device is restored.
    pub failure: Option<String>,
}

/// Everything a rollout needs to resume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloutState {
    /// What identifies the rollout: a digest of group, entry and plan.
    pub id: String,
    pub group: String,
    /// Who started it (the operator's name) and when (Unix seconds).
    pub operator: String,
    pub started: u64,
    pub updated: u64,
    pub plan: Plan,
    /// The new entry, its artifacts already on the broker.
    pub entry: DesiredModule,
    /// The devices of each wave, fixed when the rollout started.
    pub waves: Vec<Vec<String>>,
    pub devices: BTreeMap<String, DeviceProgress>,
    pub phase: RolloutPhase,
    /// Devices of the group left out, and why (their own document pins
    /// the module).
    pub skipped: Vec<(String, String)>,
}

impl RolloutState {
    /// Devices counted against the rollout.
    pub fn failures(&self) -> usize {
        self.devices.values().filter(|d| d.failure.is_some()).count()
    }

    /// The failures the plan tolerates.
    pub fn tolerated(&self) -> usize {
        self.plan.max_failures.tolerated(self.devices.len())
    }

    pub fn soak(&self) -> Duration {
        self.plan.soak
    }
}

/// What the broker holds for a group's rollout.
#[derive(Debug, Clone, Default)]
pub struct Found {
    /// The state, if signed by a key the reader trusts.
    pub state: Option<RolloutState>,
    /// Why a retained state was ignored (untrusted, unreadable).
    pub ignored: Option<String>,
}

/// Reads the group's retained rollout state.
pub fn load(operator: &Operator, trust: &TrustPolicy, group: &str) -> Result<Found, OperatorError> {
    let topic = topics::group_rollout(group)?;
    let found = operator.retained(&topic, Duration::from_millis(500))?;
    let Some((_, payload)) = found.into_iter().rev().find(|(_, p)| !p.is_empty()) else {
        return Ok(Found::default());
    };
    Ok(open(trust, &payload))
}

/// The state in a retained payload, if a trusted key signed it.
pub fn open(trust: &TrustPolicy, payload: &[u8]) -> Found {
    let ignored = |why: String| Found {
        state: None,
        ignored: Some(why),
    };
    let Ok(signed) = wire::decode::<SignedDocument>(payload) else {
        return ignored("the retained rollout state is not one (unreadable)".into());
    };
    match record::open(trust, &signed) {
        Ok(body) => match postcard::from_bytes::<RolloutState>(body) {
            Ok(state) => Found {
                state: Some(state),
                ignored: None,
            },
            Err(e) => ignored(format!("the retained rollout state is unreadable: {e}")),
        },
        Err(e) => ignored(format!("the retained rollout state is ignored: {e}")),
    }
}

/// Publishes `state` (retained, signed with `key`) and its JSON view.
pub fn save(operator: &Operator, key: &SigningKey, state: &RolloutState) -> Result<(), OperatorError> {
    let body = postcard::to_stdvec(state)
        .map_err(|e| OperatorError::Frame(arcella_core::protocol::frame::FrameError::Malformed(e.to_string())))?;
    let signed = record::sign(key, body);
    operator.publish_raw(&topics::group_rollout(&state.group)?, true, wire::encode(&signed)?)?;
    if let Some(json) = crate::json::bounded(&crate::json::views::RolloutView::new(state), crate::json::MAX_PAYLOAD) {
        operator.publish_raw(&topics::group_json(&state.group, crate::json::ROLLOUT)?, true, json)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::plan::Amount;
    use arcella_core::protocol::fleet::ArtifactRef;

    fn state() -> RolloutState {
        RolloutState {
            id: "0123456789abcdef".into(),
            group: "north".into(),
            operator: "ops".into(),
            started: 1,
            updated: 1,
            plan: Plan {
                waves: vec![Amount::Percent(100)],
                soak: Duration::from_secs(1),
                max_failures: Amount::Count(0),
                wave_timeout: Duration::from_secs(60),
            },
            entry: DesiredModule {
                id: "ticker".into(),
                artifact: ArtifactRef {
                    sha256: [7; 32],
                    len: 1,
                    chunk_len: 1024,
                    signature: None,
                },
                variants: vec![],
                component_toml: None,
                deployment_toml: String::new(),
                run: true,
                source: None,
            },
            waves: vec![vec!["gw-1".into()]],
            devices: BTreeMap::new(),
            phase: RolloutPhase::Done,
            skipped: vec![],
        }
    }

    fn payload(key: &SigningKey, state: &RolloutState) -> Vec<u8> {
        let body = postcard::to_stdvec(state).unwrap_or_default();
        wire::encode(&record::sign(key, body)).unwrap_or_default()
    }

    #[test]
    fn a_state_is_believed_only_as_signed_by_a_trusted_key() {
        let key = arcella_core::signing::generate().unwrap();
        let trust = TrustPolicy {
            trusted_keys: vec![key.verifying_key().to_bytes()],
            allow_unsigned: false,
        };
        let good = payload(&key, &state());
        assert_eq!(open(&trust, &good).state, Some(state()));
        // Another operator's key, not trusted here: a forged state that
        // would block the group ("unfinished") or steer a resume.
        let stranger = arcella_core::signing::generate().unwrap();
        let forged = open(&trust, &payload(&stranger, &state()));
        assert!(forged.state.is_none());
        assert!(forged.ignored.unwrap().contains("does not trust"));
        // One byte of the signed body changed.
        // (Frame length, body length, then the body: the rollout's id.)
        let mut tampered = good.clone();
        tampered[8] ^= 1;
        assert!(open(&trust, &tampered).state.is_none());
        // Not a frame at all.
        assert!(open(&trust, b"forged").ignored.unwrap().contains("not one"));
    }
}
