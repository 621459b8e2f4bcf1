//! One runner per group at a time. A run claims the group's rollout with
//! a retained message of its own (`…/rollout/claims/<nonce>`) whose last
//! will clears it, so the claim lives exactly as long as the runner's
//! connection: a closed laptop or a killed process frees the group.
//!
//! Two operators starting at once: each publishes its claim, waits for
//! the broker's acknowledgement, then reads every claim. The broker orders
//! both acknowledgements before the later read, so at least one of the
//! two sees the other; a run that sees another claim withdraws its own,
//! waits a random moment and tries again, and gives up after a few tries.
//! At most one ever proceeds; never both.

use crate::operator::{Operator, OperatorError};
use crate::{topics, wire};
use arcella_core::digest;
use rumqttc::{LastWill, QoS};
use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Tries before a run gives up to a concurrent one.
const TRIES: u32 = 3;

/// What a claim says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    pub nonce: String,
    pub operator: String,
    /// Unix seconds.
    pub since: u64,
}

/// A run's claim on a group's rollout, before and after it is taken.
#[derive(Debug, Clone)]
pub struct Ticket {
    pub group: String,
    pub claim: Claim,
}

impl Ticket {
    /// A new ticket for `operator` on `group`'s rollout.
    pub fn new(group: &str, operator: &str) -> Self {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let seed = format!("{}-{}-{operator}", std::process::id(), now.as_nanos());
        Self {
            group: group.to_owned(),
            claim: Claim {
                nonce: digest::hex(&digest::sha256(seed.as_bytes()))[..16].to_owned(),
                operator: operator.to_owned(),
                since: now.as_secs(),
            },
        }
    }

    /// The last will the operator's connection must carry: it clears the
    /// claim when the connection dies.
    pub fn last_will(&self) -> Result<LastWill, OperatorError> {
        Ok(LastWill::new(self.topic()?, Vec::new(), QoS::AtLeastOnce, true))
    }

    fn topic(&self) -> Result<String, OperatorError> {
        Ok(topics::group_rollout_claim(&self.group, &self.claim.nonce)?)
    }

    /// Takes the group's rollout, or names the run that holds it.
    pub fn take(&self, operator: &Operator) -> Result<(), Option<Claim>> {
        let mut other = None;
        for attempt in 0..TRIES {
            if attempt > 0 {
                std::thread::sleep(backoff());
            }
            let publish = || -> Result<Vec<Claim>, OperatorError> {
                operator.publish_raw(&self.topic()?, true, wire::encode(&self.claim)?)?;
                holders(operator, &self.group)
            };
            let Ok(claims) = publish() else {
                continue;
            };
            match claims.into_iter().find(|c| c.nonce != self.claim.nonce) {
                None => return Ok(()),
                Some(c) => other = Some(c),
            }
            self.release(operator);
        }
        Err(other)
    }

    /// Gives the claim up.
    pub fn release(&self, operator: &Operator) {
        if let Ok(topic) = self.topic() {
            let _ = operator.publish_raw(&topic, true, Vec::new());
        }
    }
}

/// Every live claim on `group`'s rollout.
pub fn holders(operator: &Operator, group: &str) -> Result<Vec<Claim>, OperatorError> {
    let found = operator.retained(&topics::group_rollout_claims(group)?, Duration::from_millis(300))?;
    // The last word per topic: a claim cleared meanwhile is gone.
    let latest: std::collections::BTreeMap<String, Vec<u8>> = found.into_iter().collect();
    Ok(latest
        .into_values()
        .filter(|p| !p.is_empty())
        .filter_map(|p| wire::decode(&p).ok())
        .collect())
}

/// 200–1200 ms, different for two runs started together.
fn backoff() -> Duration {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    let mixed = nanos ^ std::process::id().wrapping_mul(2_654_435_761);
    Duration::from_millis(200 + u64::from(mixed % 1000))
}
