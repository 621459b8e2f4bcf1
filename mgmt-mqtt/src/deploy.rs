//! Deploying to a device or a group: publish the artifact's chunks,
//! publish the next version of the target's desired state, signed whole,
//! then follow every targeted device until each has a verdict (healthy,
//! failed, rolled back, refused), has gone offline, or the deadline.
//!
//! The next document is built from the newest of the retained document
//! and the documents devices report they applied, so a broker that lost
//! its retained messages never shrinks a device's module set.

use crate::operator::{DeviceView, Operator, OperatorError, Target};
use arcella_core::protocol::fleet::{
    ArtifactSignature, ArtifactVariant, DesiredDocument, DesiredModule, Phase, SignedDocument,
};
use arcella_core::signing::{TrustPolicy, document};
use ed25519_dalek::SigningKey;
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

/// Who signs the documents of a deploy, and whose earlier documents it
/// builds on (its own key, and those of the other operators it names).
#[derive(Debug, Clone)]
pub struct Signer {
    pub key: SigningKey,
    pub trust: TrustPolicy,
}

impl Signer {
    /// Signs with `key` and builds on documents signed by it.
    pub fn new(key: SigningKey) -> Self {
        let trust = TrustPolicy {
            trusted_keys: vec![key.verifying_key().to_bytes()],
            allow_unsigned: false,
        };
        Self { key, trust }
    }

    /// Also builds on documents signed by these keys (rotation, several
    /// operators).
    pub fn trusting(mut self, keys: impl IntoIterator<Item = [u8; 32]>) -> Self {
        self.trust.trusted_keys.extend(keys);
        self
    }
}

/// Publishes `artifact` and a desired state with `module` in it; returns
/// the new version.
pub fn deploy(
    operator: &Operator,
    signer: &Signer,
    target: &Target,
    artifact: &[u8],
    chunk_len: u32,
    signature: Option<ArtifactSignature>,
    module: ModuleSpec,
) -> Result<u64, OperatorError> {
    let build = Build {
        fingerprint: None,
        artifact,
        signature,
    };
    deploy_builds(operator, signer, target, &[build], None, chunk_len, module)
}

/// One artifact of a module: for every device, or (`fingerprint`) for
/// the devices whose engine it was compiled for.
#[derive(Debug, Clone)]
pub struct Build<'a> {
    pub fingerprint: Option<String>,
    pub artifact: &'a [u8],
    pub signature: Option<ArtifactSignature>,
}

/// Publishes every build's artifact (and the module's `.wasm` `source`,
/// if given, for `fleet rebuild`) and a desired state with `module` in
/// it, each device to take the build for its engine (mixed boards);
/// returns the new version. `builds` must not be empty.
pub fn deploy_builds(
    operator: &Operator,
    signer: &Signer,
    target: &Target,
    builds: &[Build<'_>],
    source: Option<&[u8]>,
    chunk_len: u32,
    module: ModuleSpec,
) -> Result<u64, OperatorError> {
    let entry = publish_entry(operator, builds, source, chunk_len, module)?;
    change(operator, signer, target, |modules| put(modules, entry))
}

/// Publishes every build's artifact and the `source`; returns the
/// document entry that names them (one artifact for all, or one per
/// engine fingerprint).
pub fn publish_entry(
    operator: &Operator,
    builds: &[Build<'_>],
    source: Option<&[u8]>,
    chunk_len: u32,
    module: ModuleSpec,
) -> Result<DesiredModule, OperatorError> {
    let mut variants = Vec::with_capacity(builds.len());
    for build in builds {
        let mut artifact = operator.publish_artifact(build.artifact, chunk_len)?;
        artifact.signature = build.signature.clone();
        variants.push(ArtifactVariant {
            fingerprint: build.fingerprint.clone().unwrap_or_default(),
            artifact,
        });
    }
    let first = variants
        .first()
        .map(|v| v.artifact.clone())
        .ok_or(OperatorError::NothingToDeploy)?;
    if builds.iter().all(|b| b.fingerprint.is_none()) {
        variants.clear();
    }
    Ok(DesiredModule {
        id: module.id,
        artifact: first,
        variants,
        component_toml: module.component_toml,
        deployment_toml: module.deployment_toml,
        run: module.run,
        source: source
            .map(|bytes| operator.publish_artifact(bytes, chunk_len))
            .transpose()?,
    })
}

/// `modules` with `entry` in place of any entry of its id.
pub fn put(modules: &mut Vec<DesiredModule>, entry: DesiredModule) {
    modules.retain(|m| m.id != entry.id);
    modules.push(entry);
}

/// Publishes a desired state without `module`; returns the new version.
pub fn undeploy(operator: &Operator, signer: &Signer, target: &Target, module: &str) -> Result<u64, OperatorError> {
    change(operator, signer, target, |modules| modules.retain(|m| m.id != module))
}

/// The documents a change builds on: those retained on the broker and
/// those devices report they applied (`true`), as signed.
#[derive(Debug, Clone, Default)]
pub struct Documents {
    candidates: Vec<(SignedDocument, bool)>,
}

impl Documents {
    /// What a change of `target` builds on.
    pub fn of(operator: &Operator, target: &Target) -> Result<Self, OperatorError> {
        let mut candidates: Vec<(SignedDocument, bool)> =
            operator.desired(target)?.into_iter().map(|d| (d, false)).collect();
        candidates.extend(operator.applied()?.into_iter().map(|d| (d, true)));
        Ok(Self { candidates })
    }

    /// What changes of any target build on: every document, gathered once
    /// (a rollout changes many devices' documents).
    pub fn all(operator: &Operator) -> Result<Self, OperatorError> {
        let mut candidates: Vec<(SignedDocument, bool)> =
            operator.all_desired()?.into_iter().map(|d| (d, false)).collect();
        candidates.extend(operator.applied()?.into_iter().map(|d| (d, true)));
        Ok(Self { candidates })
    }

    /// The newest document for `target` signed by a key `trust` names.
    pub fn newest(&self, trust: &TrustPolicy, target: &Target) -> Option<DesiredDocument> {
        self.survey(trust, target).newest
    }

    /// What the documents hold for `target`, counting only those signed by
    /// a key `trust` names (others are reported and skipped).
    fn survey(&self, trust: &TrustPolicy, target: &Target) -> Survey {
        let wanted = target.document_target();
        let mut survey = Survey {
            newest: None,
            applied: None,
        };
        for (signed, by_device) in &self.candidates {
            let Some(unverified) = document::read_unverified(signed) else {
                continue;
            };
            if unverified.target != wanted {
                continue;
            }
            // Devices only apply what a key they trust signed: the version
            // to stay above, whoever signed it. (The retained document is
            // not counted: anyone the ACL lets publish could have put it there.)
            if *by_device && survey.applied.is_none_or(|(v, _)| unverified.version > v) {
                survey.applied = Some((unverified.version, signed.signature.key));
            }
            match document::open(trust, signed) {
                Ok(doc) if survey.newest.as_ref().is_none_or(|n| doc.version > n.version) => {
                    survey.newest = Some(doc);
                }
                Ok(_) => {}
                Err(reason) => log::warn!(
                    "a desired-state document for {wanted} (version {}) is ignored: {reason}",
                    unverified.version
                ),
            }
        }
        survey
    }
}

/// What the broker holds for a target.
struct Survey {
    /// The newest document signed by a trusted key.
    newest: Option<DesiredDocument>,
    /// The newest version a device applied, whoever signed it, and the
    /// key that did.
    applied: Option<(u64, [u8; 32])>,
}

/// Publishes the target's next desired-state version, changed by `edit`.
fn change(
    operator: &Operator,
    signer: &Signer,
    target: &Target,
    edit: impl FnOnce(&mut Vec<DesiredModule>),
) -> Result<u64, OperatorError> {
    change_from(operator, signer, &mut Documents::of(operator, target)?, target, edit)
}

/// [`change`] built on `documents`, which then hold the new document too.
pub fn change_from(
    operator: &Operator,
    signer: &Signer,
    documents: &mut Documents,
    target: &Target,
    edit: impl FnOnce(&mut Vec<DesiredModule>),
) -> Result<u64, OperatorError> {
    let survey = documents.survey(&signer.trust, target);
    let (version, mut modules) = survey.newest.map_or((0, Vec::new()), |d| (d.version, d.modules));
    let wanted = target.document_target();
    let version = version
        .checked_add(1)
        .ok_or_else(|| OperatorError::VersionExhausted(wanted.to_string(), version))?;
    // Devices would refuse it as stale, and keep modules this document
    // would not know of: say so instead.
    if let Some((applied, key)) = survey.applied
        && applied >= version
    {
        return Err(OperatorError::BehindDevices {
            target: wanted.to_string(),
            applied,
            key: arcella_core::digest::hex(&key),
        });
    }
    edit(&mut modules);
    let document = DesiredDocument {
        target: wanted,
        version,
        modules,
    };
    let signed = document::sign(&signer.key, &document);
    operator.publish_desired(target, &signed)?;
    documents.candidates.push((signed, false));
    Ok(version)
}

/// How often a follow asks for the fleet's retained state afresh.
pub(crate) const REFRESH_EVERY: Duration = Duration::from_secs(5);

/// Where one targeted device ended up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every module healthy (or stopped or removed) as desired.
    Converged,
    /// A verdict against it: per-module reasons, or why the document was
    /// refused.
    Failed(Vec<String>),
    /// Offline: it converges when it is back, but it has not yet.
    Offline,
    /// Online but not done at the deadline.
    Pending(String),
}

/// The devices a target covers, as the broker knows them.
pub fn targets(fleet: &BTreeMap<String, DeviceView>, target: &Target) -> Vec<String> {
    match target {
        Target::Device(id) => vec![id.clone()],
        // A device names its group in its state and in its convergence:
        // either will do (a busy broker may have delivered only one).
        Target::Group(group) => fleet
            .iter()
            .filter(|(_, v)| {
                v.report.as_ref().and_then(|r| r.group.as_ref()) == Some(group)
                    || v.convergence.as_ref().and_then(|c| c.group.as_ref()) == Some(group)
            })
            .map(|(id, _)| id.clone())
            .collect(),
    }
}

/// Where `view` stands with `target`'s document `version`.
pub(crate) fn outcome(view: &DeviceView, target: &Target, version: u64) -> Outcome {
    let Some(c) = &view.convergence else {
        return if view.online {
            Outcome::Pending("no progress reported yet".into())
        } else {
            Outcome::Offline
        };
    };
    let source = crate::reconcile::source_name(match target {
        Target::Device(_) => None,
        Target::Group(g) => Some(g.as_str()),
    });
    let taken = c.version_for(&target.document_target());
    // Refused: unless a document of that version was taken after all
    // (a forgery of the same version refused before), or the refusal
    // says the device holds another document of that version.
    if let Some(refused) = &c.refused
        && refused.source == source
        && refused.version == version
        && (taken != Some(version) || refused.reason == arcella_core::protocol::fleet::Refusal::Conflict)
    {
        return Outcome::Failed(vec![format!("refused version {version}: {}", refused.reason)]);
    }
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
                .filter(|m| !m.step.is_success())
                .map(|m| format!("{}: {}", m.id, m.step))
                .collect(),
        )
    }
}

/// Follows the targeted devices until each has a verdict on `version`
/// (or is offline), or `timeout`; `on_change` sees every change of
/// outcome.
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
    let mut ids = targets(&fleet, target);
    let mut outcomes: BTreeMap<String, Outcome> = BTreeMap::new();
    let mut refresh_at = Instant::now() + REFRESH_EVERY;
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
        // A broker under load drops messages to a slow subscriber (its
        // queue per client is bounded): every few seconds the retained
        // state is asked for again, so a lost verdict is never waited for.
        if Instant::now() >= refresh_at {
            operator.refresh_fleet()?;
            refresh_at = Instant::now() + REFRESH_EVERY;
        }
        let Some(publish) = operator.next_publish(deadline.min(refresh_at))? else {
            if Instant::now() >= deadline {
                return Ok(outcomes);
            }
            continue;
        };
        crate::operator::note(&mut fleet, &publish.topic, &publish.payload);
        // Devices of the group seen only now are followed too.
        if matches!(target, Target::Group(_)) && publish.topic.ends_with("/convergence") {
            for id in targets(&fleet, target) {
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
    }
}

/// Whether every targeted device is healthy with the document (and there
/// was at least one): offline, failed and unfinished devices are not.
pub fn all_converged(outcomes: &BTreeMap<String, Outcome>) -> bool {
    !outcomes.is_empty() && outcomes.values().all(|o| *o == Outcome::Converged)
}
