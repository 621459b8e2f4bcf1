//! `fleet deploy` of a `.wasm`: one artifact per engine the targeted
//! devices report (mixed boards in one group). Each device's engine is
//! rebuilt here from what it reports, its board (looked up on this host
//! like `arcella compile --board`) or its target with the built-in
//! defaults, and kept only when the fingerprint comes out equal to the
//! device's; a device whose engine this host cannot reproduce is named
//! and skipped, and the rest proceed.

use arcella_core::artifact::compile::compile;
use arcella_core::board::BoardSearch;
use arcella_core::daemon::paths::Defaults;
use arcella_core::{EngineFingerprint, EngineProfile};
use arcella_mqtt::operator::DeviceView;
use std::collections::BTreeMap;
use std::path::Path;

/// The artifacts to deploy, one per engine, and the devices left out.
#[derive(Debug, Default)]
pub struct Builds {
    /// (fingerprint, artifact bytes, devices it is for).
    pub artifacts: Vec<(String, Vec<u8>, Vec<String>)>,
    /// One line per device skipped: its id and why.
    pub skipped: Vec<String>,
}

/// Builds `source` for every engine among `devices`' reports; `fuel`:
/// the deployment has a fuel limit (the metered variant is needed).
/// `ahead`: for the engine this host makes of each device's board and
/// target even where the device reports another (the engine it will run
/// once upgraded to this host's Arcella).
pub fn build_for(
    source: &[u8],
    name: &str,
    fleet: &BTreeMap<String, DeviceView>,
    devices: &[String],
    fuel: bool,
    boards_dir: Option<&Path>,
    ahead: bool,
) -> Result<Builds, String> {
    let config = Defaults::for_this_user().config;
    let boards = BoardSearch::for_build_host(boards_dir, config.parent().unwrap_or(Path::new("/")));
    let mut builds = Builds::default();
    // Each (board, target) rebuilt once: its profile and fingerprint.
    let mut rebuilt: BTreeMap<(String, String), Result<(String, EngineProfile), String>> = BTreeMap::new();
    // The engines needed: fingerprint → (profile, devices).
    let mut engines: BTreeMap<String, (EngineProfile, Vec<String>)> = BTreeMap::new();
    for device in devices {
        let engine = reported(fleet.get(device), fuel).and_then(|(board, target, wanted)| {
            let made = rebuilt
                .entry((board.clone(), target.clone()))
                .or_insert_with(|| rebuild(&board, &target, fuel, &boards))
                .clone()?;
            if made.0 != wanted && !ahead {
                return Err(format!(
                    "it reports engine {wanted} (board `{board}`, target `{target}`), but this host compiles that \
                     to {}: its arcella.toml sets [engine] keys of its own, or its board file or Arcella version \
                     differs from this host's; compile for it with `arcella compile --board FILE` and deploy that \
                     artifact to it",
                    made.0
                ));
            }
            Ok(made)
        });
        match engine {
            Ok((fingerprint, profile)) => engines
                .entry(fingerprint)
                .or_insert((profile, Vec::new()))
                .1
                .push(device.clone()),
            Err(why) => builds.skipped.push(format!("{device}: skipped: {why}")),
        }
    }
    for (fingerprint, (profile, devices)) in engines {
        let compiled = compile(&profile, source, name).map_err(|e| e.to_string())?;
        builds.artifacts.push((fingerprint, compiled.encode(), devices));
    }
    Ok(builds)
}

/// A device's board, target and the fingerprint it needs (plain, or
/// fuel-metered with `fuel`), from its report.
fn reported(view: Option<&DeviceView>, fuel: bool) -> Result<(String, String, String), String> {
    let info = &view
        .and_then(|v| v.report.as_ref())
        .ok_or("it has reported no state yet, so its engine is unknown")?
        .info;
    let (plain, metered) = info
        .fingerprint
        .split_once(", with fuel metering ")
        .ok_or_else(|| format!("its engine fingerprint `{}` is not in a known form", info.fingerprint))?;
    let wanted = if fuel { metered } else { plain };
    Ok((info.board.clone(), info.target.clone(), wanted.to_owned()))
}

/// The engine of `board` (or, for `generic`, the built-in defaults for
/// `target`) as this host builds it: its fingerprint and profile.
fn rebuild(board: &str, target: &str, fuel: bool, boards: &BoardSearch) -> Result<(String, EngineProfile), String> {
    let profile = if board == arcella_core::board::GENERIC {
        let target = target
            .parse()
            .map_err(|e| format!("it reports target `{target}`: {e}"))?;
        EngineProfile::default().with_target(target)
    } else {
        boards
            .load(board, Path::new("."))
            .map_err(|e| format!("it runs board `{board}`, which this host cannot load ({e}); give --boards-dir"))?
            .compile_profile()
    }
    .with_fuel(fuel);
    Ok((EngineFingerprint::of(&profile).to_string(), profile))
}
