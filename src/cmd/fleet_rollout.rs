//! `arcella fleet rollout start|status|abort`: staged rollouts to a group
//! (the engine is `arcella_mqtt::rollout`; this prints its progress).

use super::fleet::{self, FleetError};
use crate::cli::{FleetArgs, RolloutAbortArgs, RolloutArgs, RolloutGroupArgs, RolloutStartArgs, RolloutVerb};
use crate::cmd::render::json_value;
use crate::exit::{self, Failure};
use crate::output::outln;
use arcella_core::signing::{self, TrustPolicy};
use arcella_mqtt::json::views::RolloutView;
use arcella_mqtt::operator::Target;
use arcella_mqtt::rollout::state::{self, DeviceStatus, RolloutPhase, RolloutState};
use arcella_mqtt::rollout::{self, Event, Plan, Release, RolloutError, Ticket};
use serde::Serialize;

pub fn execute(fleet: &FleetArgs, rollout: &RolloutArgs, json: bool) -> Result<(), FleetError> {
    match &rollout.verb {
        RolloutVerb::Start(args) => start(fleet, args, json),
        RolloutVerb::Status(args) => status(fleet, args, json),
        RolloutVerb::Abort(args) => abort(fleet, args, json),
    }
}

/// How a rollout's error leaves the process.
pub fn failure(e: &RolloutError, err: &FleetError) -> Failure {
    match e {
        RolloutError::Aborted { .. } => Failure::with_code(exit::NOT_CONVERGED, "rollout_aborted", err),
        RolloutError::Busy { .. } | RolloutError::Contended(_) | RolloutError::Unfinished { .. } => {
            Failure::new("busy", err)
        }
        RolloutError::Operator(_) => Failure::new("unreachable", err),
        RolloutError::Plan(_) => Failure::with_code(exit::USAGE, "usage", err),
        RolloutError::NoDevices(_) | RolloutError::NoRollout(_) | RolloutError::AlreadyOver(..) => {
            Failure::new("not_found", err)
        }
    }
}

fn start(fleet: &FleetArgs, args: &RolloutStartArgs, json: bool) -> Result<(), FleetError> {
    let signer = fleet::signer(&args.module.signer)?;
    let ticket = Ticket::new(&args.group, &fleet.client);
    let will = ticket.last_will().map_err(RolloutError::from)?;
    let operator = fleet::connect_with_will(&fleet.broker, &fleet.client, Some(will))?;
    let target = Target::Group(args.group.clone());
    let release = fleet::prepare(&operator, &args.module, &signer, &target, json)?;
    let builds = release.builds();
    let plan = Plan {
        waves: args.waves.0.clone(),
        soak: args.soak,
        max_failures: args.max_failures,
        wave_timeout: args.wave_timeout,
    };
    let release = Release {
        builds: &builds,
        source: release.source.as_deref(),
        chunk_len: release.chunk_len,
        module: release.spec.clone(),
    };
    rollout::run(&operator, &signer, &ticket, &plan, release, &mut |e| show(&e, json))?;
    Ok(())
}

fn abort(fleet: &FleetArgs, args: &RolloutAbortArgs, json: bool) -> Result<(), FleetError> {
    let signer = fleet::signer(&args.signer)?;
    let ticket = Ticket::new(&args.group, &fleet.client);
    let will = ticket.last_will().map_err(RolloutError::from)?;
    let operator = fleet::connect_with_will(&fleet.broker, &fleet.client, Some(will))?;
    let reason = format!("aborted by {} (`fleet rollout abort`)", fleet.client);
    match rollout::abort(&operator, &signer, &ticket, &reason, &mut |e| show(&e, json)) {
        // Aborted is what was asked for: done when every device confirmed.
        Err(RolloutError::Aborted { pending, .. }) if pending.is_empty() => Ok(()),
        Err(e) => Err(e.into()),
        Ok(_) => Ok(()),
    }
}

/// `status --json`: the JSON mirror's view, and who drives it now.
#[derive(Serialize)]
struct StatusView<'a> {
    #[serde(flatten)]
    rollout: RolloutView<'a>,
    /// The operator whose run holds the group's rollout now (null: none).
    running_by: Option<String>,
}

fn status(fleet: &FleetArgs, args: &RolloutGroupArgs, json: bool) -> Result<(), FleetError> {
    let mut trust = TrustPolicy::default();
    if let Some(key) = &args.key {
        trust
            .trusted_keys
            .push(fleet::read_key(key)?.verifying_key().to_bytes());
    }
    for path in &args.trust {
        trust.trusted_keys.push(
            signing::public_from_text(&fleet::read_text(path)?).map_err(|e| FleetError::File {
                path: path.display().to_string(),
                message: e.to_string(),
            })?,
        );
    }
    if trust.trusted_keys.is_empty() {
        return Err(FleetError::File {
            path: "--key".into(),
            message: "give --key (or --trust FILE.pub): a rollout's state is only believed when signed by a key \
                      you trust"
                .into(),
        });
    }
    let operator = fleet::connect(&fleet.broker, &fleet.client)?;
    let found = state::load(&operator, &trust, &args.group).map_err(RolloutError::from)?;
    let running_by = rollout::holders(&operator, &args.group)
        .map_err(RolloutError::from)?
        .into_iter()
        .next()
        .map(|c| c.operator);
    let Some(state) = found.state else {
        if let Some(why) = found.ignored {
            outln!("{why}");
        }
        return Err(RolloutError::NoRollout(args.group.clone()).into());
    };
    if json {
        json_value(&StatusView {
            rollout: RolloutView::new(&state),
            running_by,
        });
        return Ok(());
    }
    outln!(
        "rollout {} of {} to group {}, started by {}: {}",
        state.id,
        state.entry.id,
        state.group,
        state.operator,
        rollout::describe(&state)
    );
    match (&running_by, state.phase.is_over()) {
        (Some(who), _) => outln!("driven now by {who}"),
        (None, false) => outln!("no run is driving it: run its `fleet rollout start` command again to resume it"),
        (None, true) => {}
    }
    for (index, ids) in state.waves.iter().enumerate() {
        let tally = |word: &str| {
            ids.iter()
                .filter(|id| state.devices.get(id.as_str()).is_some_and(|d| d.status.word() == word))
                .count()
        };
        outln!(
            "wave {}/{}: {} device(s): {} healthy, {} failed, {} updating, {} waiting, {} restored",
            index + 1,
            state.waves.len(),
            ids.len(),
            tally("healthy"),
            tally("failed"),
            tally("updating"),
            tally("waiting"),
            tally("restored")
        );
    }
    for (id, d) in &state.devices {
        if let Some(why) = d.failure.as_deref().or(d.status.reason()) {
            outln!("  {id}: {}: {why}", d.status.word());
        }
    }
    for (id, why) in &state.skipped {
        outln!("  {id}: skipped: {why}");
    }
    outln!("failures: {} ({} tolerated)", state.failures(), state.tolerated());
    Ok(())
}

/// One line of `fleet rollout` with `--json`.
#[derive(Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum Line<'a> {
    Started {
        id: &'a str,
        module: &'a str,
        group: &'a str,
        waves: Vec<usize>,
        resumed: bool,
    },
    Note {
        note: &'a str,
    },
    Wave {
        wave: usize,
        of: usize,
        devices: &'a [String],
    },
    Device {
        device: &'a str,
        status: &'static str,
        reason: Option<&'a str>,
    },
    Soaking {
        wave: usize,
        secs: u64,
    },
    Aborting {
        reason: &'a str,
    },
    Done {
        phase: &'static str,
        healthy: usize,
        failures: usize,
        restored: usize,
    },
}

fn show(event: &Event<'_>, json: bool) {
    if json {
        json_value(&line(event));
        return;
    }
    match event {
        Event::Started { state, resumed } => {
            let sizes: Vec<String> = state.waves.iter().map(|w| w.len().to_string()).collect();
            if *resumed {
                outln!(
                    "resuming rollout {} of {} to group {} at {}",
                    state.id,
                    state.entry.id,
                    state.group,
                    rollout::describe(state)
                );
            } else {
                outln!(
                    "rollout {} of {} to group {}: {} device(s) in {} wave(s) of {}; soak {:?}; {} failure(s) tolerated",
                    state.id,
                    state.entry.id,
                    state.group,
                    state.devices.len(),
                    state.waves.len(),
                    sizes.join(", "),
                    state.plan.soak,
                    state.tolerated()
                );
            }
            for (id, why) in &state.skipped {
                outln!("{id}: skipped: {why}");
            }
        }
        Event::Note(note) => outln!("note: {note}"),
        Event::Wave { index, state } => {
            let ids = &state.waves[*index];
            outln!(
                "wave {}/{}: {} device(s): {}",
                index + 1,
                state.waves.len(),
                ids.len(),
                ids.join(", ")
            );
        }
        Event::Device { id, progress } => match (&progress.status, progress.failure.as_deref()) {
            (DeviceStatus::Failed, Some(why)) => outln!("{id}: FAILED: {why}"),
            (DeviceStatus::RestorePending { reason }, _) => outln!("{id}: return pending: {reason}"),
            (DeviceStatus::Updating, _) => outln!(
                "{id}: updating (its document version {})",
                progress.version.unwrap_or_default()
            ),
            (DeviceStatus::Restored, _) => outln!("{id}: back on the previous document"),
            (status, _) => outln!("{id}: {}", status.word()),
        },
        Event::Soaking { index, soak } => {
            outln!("wave {}: every device has a verdict; soaking {soak:?}", index + 1);
        }
        Event::Aborting { reason } => {
            outln!("ABORTING: {reason}; the devices already updated return to the previous document");
        }
        Event::Finished { state } => finished(state),
    }
}

fn finished(state: &RolloutState) {
    let failed: Vec<String> = state
        .devices
        .iter()
        .filter_map(|(id, d)| Some(format!("{id} ({})", d.failure.as_deref()?)))
        .collect();
    match &state.phase {
        RolloutPhase::Done => {
            let healthy = state
                .devices
                .values()
                .filter(|d| d.status == DeviceStatus::Healthy)
                .count();
            outln!(
                "rollout complete: group {}'s document has {}; {healthy} of {} device(s) healthy through their soak",
                state.group,
                state.entry.id,
                state.devices.len()
            );
            if !failed.is_empty() {
                outln!(
                    "{} failure(s) tolerated (of {}): {}",
                    failed.len(),
                    state.tolerated(),
                    failed.join(", ")
                );
            }
        }
        RolloutPhase::Aborted { reason } => outln!("rollout aborted: {reason}"),
        _ => {}
    }
}

fn line<'a>(event: &'a Event<'a>) -> Line<'a> {
    match event {
        Event::Started { state, resumed } => Line::Started {
            id: &state.id,
            module: &state.entry.id,
            group: &state.group,
            waves: state.waves.iter().map(Vec::len).collect(),
            resumed: *resumed,
        },
        Event::Note(note) => Line::Note { note },
        Event::Wave { index, state } => Line::Wave {
            wave: index + 1,
            of: state.waves.len(),
            devices: &state.waves[*index],
        },
        Event::Device { id, progress } => Line::Device {
            device: id,
            status: progress.status.word(),
            reason: progress.failure.as_deref().or(progress.status.reason()),
        },
        Event::Soaking { index, soak } => Line::Soaking {
            wave: index + 1,
            secs: soak.as_secs(),
        },
        Event::Aborting { reason } => Line::Aborting { reason },
        Event::Finished { state } => {
            let count = |f: fn(&DeviceStatus) -> bool| state.devices.values().filter(|d| f(&d.status)).count();
            Line::Done {
                phase: state.phase.word(),
                healthy: count(|s| *s == DeviceStatus::Healthy),
                failures: state.failures(),
                restored: count(|s| *s == DeviceStatus::Restored),
            }
        }
    }
}
