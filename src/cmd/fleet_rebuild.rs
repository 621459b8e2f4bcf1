//! `arcella fleet rebuild`: after an Arcella upgrade (or a board or
//! `[engine]` change) a device reports the modules whose artifacts no
//! longer fit its engine (`needs_artifact`). This compiles each of them
//! again, from the `.wasm` the desired-state document keeps on the
//! broker, for every engine of the target's devices this host can make,
//! and publishes the next version of the same document with those
//! artifacts beside the ones it had (devices on engines this host cannot
//! make, older Arcellas say, keep theirs). `--ahead` does it before the
//! upgrade, for the engines the devices will run once upgraded.

use super::fleet::FleetError;
use crate::cli::RebuildArgs;
use arcella_mqtt::operator::Operator;

#[cfg(feature = "compiler")]
pub fn rebuild(operator: &Operator, args: &RebuildArgs, json: bool) -> Result<(), FleetError> {
    use super::fleet::{self, Progress};
    use crate::cmd::render::json_value;
    use crate::output::outln;
    use arcella_core::digest;
    use arcella_core::protocol::fleet::Step;
    use arcella_core::signing;
    use arcella_mqtt::deploy::{self, Documents, ModuleSpec};
    use std::collections::BTreeMap;
    use std::time::Duration;

    let signer = fleet::signer(&args.signer)?;
    let target = fleet::target(&args.target);
    let mut documents = Documents::of(operator, &target)?;
    let refused = |message: String| FleetError::File {
        path: target.document_target().to_string(),
        message,
    };
    let document = documents.newest(&signer.trust, &target).ok_or_else(|| {
        refused("has no desired-state document signed by --key or a --trust key: nothing to rebuild".into())
    })?;
    let fleet_view = operator.devices(Duration::from_millis(500))?;
    let devices = deploy::targets(&fleet_view, &target);
    // Module id → the devices that need an artifact for it, and their engines.
    let mut needed: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for id in &devices {
        let Some(c) = fleet_view.get(id).and_then(|v| v.convergence.as_ref()) else {
            continue;
        };
        for m in &c.modules {
            if let Step::NeedsArtifact { engine } = &m.step {
                needed.entry(m.id.clone()).or_default().push(format!("{id} ({engine})"));
            }
        }
    }
    if args.ahead {
        for m in document.modules.iter().filter(|m| m.source.is_some()) {
            needed
                .entry(m.id.clone())
                .or_default()
                .push("every device, once upgraded (--ahead)".into());
        }
    }
    if needed.is_empty() {
        outln!(
            "no device of {} reports a module that needs an artifact for its engine",
            target.document_target()
        );
        return Ok(());
    }
    let mut rebuilt = Vec::new();
    let mut missing = Vec::new();
    for (module, who) in &needed {
        let Some(entry) = document.modules.iter().find(|m| &m.id == module) else {
            missing.push(format!(
                "{module}: not in {}'s document (it comes from the group's, or a device's own): rebuild that target",
                target.document_target()
            ));
            continue;
        };
        let Some(source) = &entry.source else {
            missing.push(format!(
                "{module}: deployed as a .cwasm, so the document keeps no source to compile: deploy its .wasm \
                 (`arcella fleet deploy … {module}.wasm`), and later upgrades can be rebuilt"
            ));
            continue;
        };
        if !json {
            outln!("{module}: needed by {}", who.join(", "));
        }
        let bytes = operator.fetch_artifact(source)?;
        let fuel = arcella_core::manifest::parse_deployment(&entry.deployment_toml, "deployment.toml")
            .is_ok_and(|d| d.limits.fuel.is_some());
        let builds = super::fleet_build::build_for(
            &bytes,
            &format!("{module}.wasm"),
            &fleet_view,
            &devices,
            fuel,
            args.boards_dir.as_deref(),
            args.ahead,
        )
        .map_err(|e| refused(format!("{module}: {e}")))?;
        fleet::notes(&builds.skipped, json);
        if builds.artifacts.is_empty() {
            missing.push(format!(
                "{module}: no device of the target has an engine this host can compile for"
            ));
            continue;
        }
        let signed: Vec<deploy::Build<'_>> = builds
            .artifacts
            .iter()
            .map(|(fingerprint, bytes, _)| deploy::Build {
                fingerprint: Some(fingerprint.clone()),
                artifact: bytes,
                signature: Some(signing::sign(&signer.key, &digest::sha256(bytes))),
            })
            .collect();
        let spec = ModuleSpec {
            id: entry.id.clone(),
            component_toml: entry.component_toml.clone(),
            deployment_toml: entry.deployment_toml.clone(),
            run: entry.run,
        };
        let mut new = deploy::publish_entry(operator, &signed, None, source.chunk_len, spec)?;
        new.source = Some(source.clone());
        keep_other_engines(&mut new, entry);
        for (fingerprint, bytes, for_devices) in &builds.artifacts {
            let sha256 = digest::hex(&digest::sha256(bytes));
            if !json {
                outln!(
                    "{module}: published artifact {sha256} for engine {fingerprint} ({})",
                    for_devices.join(", ")
                );
            }
        }
        rebuilt.push(new);
    }
    fleet::notes(&missing, json);
    if rebuilt.is_empty() {
        return Err(refused("no module could be rebuilt (see above)".into()));
    }
    let version = deploy::change_from(operator, &signer, &mut documents, &target, |modules| {
        for entry in rebuilt {
            deploy::put(modules, entry);
        }
    })?;
    if json {
        json_value(&Progress::Published {
            version,
            artifact_sha256: None,
        });
    } else {
        outln!("published desired state version {version}");
    }
    fleet::follow(operator, &target, version, args.target.timeout, json)
}

/// `new` (the variants just built) also carries what `old` had for the
/// engines not built now: the devices on them keep their artifacts.
#[cfg(feature = "compiler")]
fn keep_other_engines(
    new: &mut arcella_core::protocol::fleet::DesiredModule,
    old: &arcella_core::protocol::fleet::DesiredModule,
) {
    let built: Vec<String> = new.variants.iter().map(|v| v.fingerprint.clone()).collect();
    new.variants
        .extend(old.variants.iter().filter(|v| !built.contains(&v.fingerprint)).cloned());
    if old.variants.is_empty() {
        // One artifact for all before: it stays the default for every
        // device no variant names, and a variant equal to it is redundant.
        new.artifact = old.artifact.clone();
        new.variants.retain(|v| v.artifact.sha256 != old.artifact.sha256);
    }
}

#[cfg(not(feature = "compiler"))]
pub fn rebuild(_: &Operator, _: &RebuildArgs, _: bool) -> Result<(), FleetError> {
    Err(FleetError::File {
        path: "rebuild".into(),
        message: "compiles modules, and this arcella has no compiler (a device build): run it on a build host".into(),
    })
}
