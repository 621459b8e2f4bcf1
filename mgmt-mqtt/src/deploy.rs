//! Deploying to a device or a group: publish the artifact's chunks,
//! publish the next version of the target's desired state, then follow
//! every targeted device until it has converged, failed or gone offline.

use crate::operator::{DeviceView, Operator, OperatorError, Target};
use arcella_core::protocol::fleet::{ArtifactSignature, DesiredModule, Phase};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// A module to deploy, without its artifact.
#[derive(Debug, Clone)]
pub struct ModuleSpec {
    pub id: String,
    pub component_toml: Option<String>,
    pub deployment_toml: String,
    pub run: bool,
}

/// Publishes `artifact` and a desired state with `module` in it; returns
/// the new version.
pub fn deploy(
    operator: &Operator,
    target: &Target,
    artifact: &[u8],
    chunk_len: u32,
    signature: Option<ArtifactSignature>,
    module: ModuleSpec,
) -> Result<u64, OperatorError> {
    let mut artifact_ref = operator.publish_artifact(artifact, chunk_len)?;
    artifact_ref.signature = signature;
    let entry = DesiredModule {
        id: module.id,
        artifact: artifact_ref,
        component_toml: module.component_toml,
        deployment_toml: module.deployment_toml,
        run: module.run,
    };
    change(operator, target, |modules| {
        modules.retain(|m| m.id != entry.id);
        modules.push(entry);
    })
}

/// Publishes a desired state without `module`; returns the new version.
pub fn undeploy(operator: &Operator, target: &Target, module: &str) -> Result<u64, OperatorError> {
    change(operator, target, |modules| modules.retain(|m| m.id != module))
}

/// Publishes the target's next desired-state version, changed by `edit`.
fn change(
    operator: &Operator,
    target: &Target,
    edit: impl FnOnce(&mut Vec<DesiredModule>),
) -> Result<u64, OperatorError> {
    let mut document = operator.desired(target)?.unwrap_or_default();
    edit(&mut document.modules);
    document.version += 1;
    operator.publish_desired(target, &document)?;
    Ok(document.version)
}

/// Where one targeted device ended up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Converged,
    /// Per-module reasons.
    Failed(Vec<String>),
    /// Offline: it converges when it is back.
    Offline,
    /// Online but not done at the deadline.
    Pending(String),
}

/// The devices a target covers, as the broker knows them.
pub fn targets(fleet: &BTreeMap<String, DeviceView>, target: &Target) -> Vec<String> {
    match target {
        Target::Device(id) => vec![id.clone()],
        Target::Group(group) => fleet
            .iter()
            .filter(|(_, v)| v.report.as_ref().and_then(|r| r.group.as_ref()) == Some(group))
            .map(|(id, _)| id.clone())
            .collect(),
    }
}

fn outcome(view: &DeviceView, target: &Target, version: u64) -> Outcome {
    let Some(c) = &view.convergence else {
        return if view.online {
            Outcome::Pending("no progress reported yet".into())
        } else {
            Outcome::Offline
        };
    };
    let taken = match target {
        Target::Device(_) => c.device_version,
        Target::Group(_) => c.group_version,
    };
    let done = taken.is_some_and(|v| v >= version) && matches!(c.phase, Phase::Converged | Phase::Failed);
    if !done {
        if !view.online {
            return Outcome::Offline;
        }
        let steps: Vec<String> = c.modules.iter().map(|m| format!("{} {}", m.id, m.step)).collect();
        return Outcome::Pending(if steps.is_empty() {
            "waiting".into()
        } else {
            steps.join(", ")
        });
    }
    if c.phase == Phase::Converged {
        Outcome::Converged
    } else {
        Outcome::Failed(
            c.modules
                .iter()
                .filter(|m| matches!(m.step, arcella_core::protocol::fleet::Step::Failed { .. }))
                .map(|m| format!("{}: {}", m.id, m.step))
                .collect(),
        )
    }
}

/// Follows the targeted devices until each online one is done with
/// `version` (or the timeout); `on_change` sees every change of outcome.
pub fn await_convergence(
    operator: &Operator,
    target: &Target,
    version: u64,
    timeout: Duration,
    mut on_change: impl FnMut(&str, &Outcome),
) -> Result<BTreeMap<String, Outcome>, OperatorError> {
    // The timeout covers the whole wait, gathering the fleet's view too.
    let deadline = Instant::now() + timeout;
    operator.watch_fleet()?;
    let mut fleet = operator.devices(Duration::from_millis(300))?;
    let ids = targets(&fleet, target);
    let mut outcomes: BTreeMap<String, Outcome> = BTreeMap::new();
    loop {
        for id in &ids {
            let now = outcome(fleet.get(id).unwrap_or(&DeviceView::default()), target, version);
            if outcomes.get(id) != Some(&now) {
                on_change(id, &now);
                outcomes.insert(id.clone(), now);
            }
        }
        if outcomes.values().all(|o| !matches!(o, Outcome::Pending(_))) {
            return Ok(outcomes);
        }
        let Some(publish) = operator.next_publish(deadline)? else {
            return Ok(outcomes);
        };
        crate::operator::note(&mut fleet, &publish.topic, &publish.payload);
    }
}

/// Whether every online targeted device converged (offline ones will
/// when they are back), and at least one did.
pub fn all_converged(outcomes: &BTreeMap<String, Outcome>) -> bool {
    outcomes.values().any(|o| *o == Outcome::Converged)
        && outcomes
            .values()
            .all(|o| matches!(o, Outcome::Converged | Outcome::Offline))
}
