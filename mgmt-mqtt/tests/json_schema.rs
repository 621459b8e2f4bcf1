//! Every shape of the JSON mirror's payloads (each module state, each
//! convergence step, each log stream) validates against the schema file
//! other tools are pointed at, and the schema refuses what the device
//! never sends. The live topics are checked against it too, through a real
//! broker, in the daemon's tests (`daemon::mqtt`).

use arcella_core::protocol::fleet::{
    ArtifactRef, Convergence, DesiredModule, DocumentId, ModuleProgress, Phase, Refusal, RefusedDocument, Step,
};
use arcella_core::protocol::telemetry::{ModuleTelemetry, Telemetry, WorkerTelemetry};
use arcella_core::protocol::{
    DaemonInfo, DeviceReport, Event, Isolation, LogLevel, LogLine, LogStream, ModuleHealth, ModuleKind, ModuleState,
    ModuleSummary,
};
use arcella_mqtt::json::views::{ConvergenceView, EventView, RolloutView, StateView, TelemetryView};
use arcella_mqtt::rollout::state::{DeviceProgress, DeviceStatus, RolloutPhase, RolloutState};
use arcella_mqtt::rollout::{Amount, Plan};
use arcella_test_broker::mirror_schema::MirrorSchema as Schema;
use serde_json::{Value, json};
use std::time::Duration;

fn every_state() -> Vec<ModuleState> {
    vec![
        ModuleState::Stopped,
        ModuleState::Starting,
        ModuleState::Running,
        ModuleState::Stopping,
        ModuleState::Exited { code: -1 },
        ModuleState::BackingOff { attempt: 2, in_ms: 400 },
        ModuleState::Failed {
            reason: "trap: \"unreachable\"\n at 0x1".into(),
        },
        ModuleState::Waiting {
            reason: "no provider of acme:greet/hello".into(),
        },
    ]
}

fn report() -> DeviceReport {
    let states = every_state();
    DeviceReport {
        info: DaemonInfo {
            version: "0.1.0".into(),
            protocol: 5,
            fingerprint: "wasmtime-48 a, with fuel metering b".into(),
            target: "aarch64-unknown-linux-gnu".into(),
            board: "rpi4-aarch64".into(),
            data_dir: "/var/lib/arcella".into(),
            uptime_secs: 12,
            modules: states.len() as u32,
            interfaces: vec![],
        },
        free_disk: 1 << 30,
        free_memory: 1 << 28,
        modules: states
            .iter()
            .enumerate()
            .map(|(i, state)| ModuleSummary {
                id: format!("m{i}"),
                version: "1.0.0".into(),
                kind: [ModuleKind::Command, ModuleKind::Service, ModuleKind::Provider][i % 3],
                isolation: if i % 2 == 0 { Isolation::Main } else { Isolation::Worker },
                state: state.clone(),
            })
            .collect(),
        health: (0..states.len())
            .map(|i| ModuleHealth {
                id: format!("m{i}"),
                healthy: i % 2 == 0,
                restarts: i as u32,
                last_error: (i == 6).then(|| "it trapped".into()),
            })
            .collect(),
        group: Some("north".into()),
    }
}

#[test]
fn the_state_of_every_module_state_matches_the_schema() {
    let mut schema = Schema::load();
    let report = report();
    let view = serde_json::to_value(StateView::new("gw-1", &report, 1_700_000_000)).unwrap();
    schema.assert_valid("state", &view);
    assert_eq!(view["module_count"], 8);
    assert_eq!(view["modules"]["m5"]["state"], "backing_off");
    assert_eq!(view["modules"]["m5"]["retry_in_ms"], 400);
    assert_eq!(view["modules"]["m4"]["exit_code"], -1);
    assert_eq!(view["modules"]["m6"]["last_error"], "it trapped");
    assert_eq!(view["group"], "north");
}

#[test]
fn every_convergence_step_matches_the_schema() {
    let mut schema = Schema::load();
    let steps = [
        Step::Pending,
        Step::Fetching {
            received: 10,
            total: 20,
        },
        Step::Installing,
        Step::HealthWindow { until: 99 },
        Step::Healthy,
        Step::Stopped,
        Step::Removed,
        Step::RolledBack {
            reason: "crashed".into(),
        },
        Step::Failed { reason: "bad".into() },
        Step::Drifted {
            reason: "stopped by hand".into(),
        },
        Step::NeedsArtifact {
            engine: "wasmtime-48.0.8/aarch64-unknown-linux-gnu/0dedce95752ab75a".into(),
        },
    ];
    let convergence = Convergence {
        group: None,
        group_document: None,
        device_document: Some(DocumentId {
            version: 3,
            sha256: [0xab; 32],
        }),
        phase: Phase::Failed,
        modules: steps
            .iter()
            .enumerate()
            .map(|(i, step)| ModuleProgress {
                id: format!("m{i}"),
                step: step.clone(),
            })
            .collect(),
        refused: Some(RefusedDocument {
            source: "group north".into(),
            version: 7,
            reason: Refusal::Signature("signed by a key this device does not trust".into()),
        }),
    };
    let view = serde_json::to_value(ConvergenceView::new("gw-1", &convergence)).unwrap();
    schema.assert_valid("convergence", &view);
    assert_eq!(view["phase"], "failed");
    assert_eq!(view["device_document"]["sha256"], "ab".repeat(32));
    assert_eq!(view["modules"]["m4"]["success"], true);
    assert_eq!(view["modules"]["m7"]["step"], "rolled_back");
    assert_eq!(view["modules"]["m7"]["success"], false);
    assert_eq!(view["modules"]["m3"]["done"], false);
    assert_eq!(view["modules"]["m10"]["step"], "needs_artifact");
    assert_eq!(
        view["modules"]["m10"]["done"], true,
        "a verdict: nothing more happens by itself"
    );
    assert_eq!(view["modules"]["m10"]["success"], false);
    assert!(
        view["modules"]["m10"]["engine"]
            .as_str()
            .unwrap()
            .starts_with("wasmtime-48.0.8/aarch64")
    );
    let mut bad = view.clone();
    bad["modules"]["m10"].as_object_mut().unwrap().remove("engine");
    assert!(
        schema.check("convergence", &bad).is_err(),
        "needs_artifact without the engine"
    );
    assert!(view["refused"]["reason"].as_str().unwrap().contains("does not trust"));
    schema.assert_valid(
        "convergence",
        &serde_json::to_value(ConvergenceView::new("gw-1", &Convergence::default())).unwrap(),
    );
}

#[test]
fn telemetry_with_and_without_figures_matches_the_schema() {
    let mut schema = Schema::load();
    let reading = Telemetry {
        at: 5,
        uptime_secs: 4,
        free_memory: 3,
        total_memory: 9,
        free_disk: 2,
        daemon_resident: 1,
        modules: every_state()
            .into_iter()
            .enumerate()
            .map(|(i, state)| ModuleTelemetry {
                id: format!("m{i}"),
                version: "2".into(),
                isolation: Isolation::Worker,
                state,
                restarts: 0,
                started_at: (i == 2).then_some(100),
                memory: (i == 2).then_some(65536),
                cpu_ms: (i == 2).then_some(12),
            })
            .collect(),
        workers: vec![WorkerTelemetry {
            group: "default".into(),
            pid: 42,
            resident: 5 << 20,
        }],
    };
    let view = serde_json::to_value(TelemetryView::new("gw-1", &reading)).unwrap();
    schema.assert_valid("telemetry", &view);
    assert_eq!(view["modules"]["m2"]["memory"], 65536);
    assert_eq!(view["modules"]["m3"]["memory"], Value::Null);
}

#[test]
fn events_of_every_kind_match_the_schema_whatever_the_text_holds() {
    let mut schema = Schema::load();
    let mut events: Vec<Event> = every_state()
        .into_iter()
        .map(|state| Event::State {
            module: "ticker".into(),
            state,
        })
        .collect();
    for stream in [
        LogStream::Stdout,
        LogStream::Stderr,
        LogStream::Daemon,
        LogStream::Logging(LogLevel::Warn),
    ] {
        events.push(Event::Log(LogLine {
            module: "ticker".into(),
            stream,
            at_ms: 1,
            // What a guest may print: quotes, braces, control characters.
            text: "\"}, {\"type\": \"state\"\u{0}\u{1b}[31m\ttab".into(),
        }));
    }
    for event in &events {
        let text = serde_json::to_string(&EventView::new("gw-1", event, 7)).unwrap();
        let value: Value = serde_json::from_str(&text).unwrap();
        schema.assert_valid("events", &value);
    }
    let line = serde_json::to_value(EventView::new("gw-1", events.last().unwrap(), 7)).unwrap();
    assert_eq!(line["type"], "log");
    assert_eq!(line["level"], "warn");
    assert!(line["text"].as_str().unwrap().starts_with("\"}, {"));
}

#[test]
fn the_schema_refuses_what_the_device_never_sends() {
    let mut schema = Schema::load();
    let report = report();
    let good = serde_json::to_value(StateView::new("gw-1", &report, 1)).unwrap();
    let mut bad = good.clone();
    bad["modules"]["m2"]["state"] = json!("sleeping");
    assert!(schema.check("state", &bad).is_err(), "an unknown state word");
    let mut bad = good.clone();
    bad["modules"]["m4"].as_object_mut().unwrap().remove("exit_code");
    assert!(schema.check("state", &bad).is_err(), "exited without its code");
    let mut bad = good.clone();
    bad["modules"]["Bad/Name"] = good["modules"]["m0"].clone();
    assert!(schema.check("state", &bad).is_err(), "a module name outside the rule");
    let mut bad = good;
    bad.as_object_mut().unwrap().remove("device");
    assert!(schema.check("state", &bad).is_err(), "no device");
    let log = json!({"type": "log", "device": "gw", "module": "m", "at_ms": 1, "stream": "logging", "text": "x"});
    assert!(
        schema.check("events", &log).is_err(),
        "a wasi:logging line without its level"
    );
}

#[test]
fn a_state_too_big_for_one_message_leaves_modules_out_and_says_how_many() {
    let mut schema = Schema::load();
    let small = report();
    let mut report = small.clone();
    let (summary, health) = (report.modules[6].clone(), report.health[6].clone());
    // The most modules a daemon holds, each with a long error.
    report.modules = (0..1000)
        .map(|i| ModuleSummary {
            id: format!("module-{i:04}"),
            ..summary.clone()
        })
        .collect();
    report.health = (0..1000)
        .map(|i| ModuleHealth {
            id: format!("module-{i:04}"),
            last_error: Some("\u{1}".repeat(400)),
            ..health.clone()
        })
        .collect();
    let view = StateView::new("gw-1", &report, 1);
    assert!(serde_json::to_vec(&view).unwrap().len() > arcella_mqtt::json::MAX_PAYLOAD);
    let payload = arcella_mqtt::json::bounded(&view, arcella_mqtt::json::MAX_PAYLOAD).unwrap();
    assert!(payload.len() <= arcella_mqtt::json::MAX_PAYLOAD, "{}", payload.len());
    let value: Value = serde_json::from_slice(&payload).unwrap();
    schema.assert_valid("state", &value);
    let kept = value["modules"].as_object().unwrap().len() as u64;
    assert!(kept > 50, "kept only {kept}");
    assert_eq!(kept + value["modules_omitted"].as_u64().unwrap(), 1000);
    assert_eq!(value["module_count"], 1000);
    // One that fits is sent whole, with no count.
    let whole: Value = serde_json::from_slice(
        &arcella_mqtt::json::bounded(&StateView::new("gw-1", &small, 1), arcella_mqtt::json::MAX_PAYLOAD).unwrap(),
    )
    .unwrap();
    assert!(whole.get("modules_omitted").is_none());
}

fn rollout(phase: RolloutPhase) -> RolloutState {
    let statuses = [
        (DeviceStatus::Waiting, None),
        (DeviceStatus::Updating, None),
        (DeviceStatus::Healthy, None),
        (DeviceStatus::Failed, Some("ticker: rolled back: trap \"unreachable\"")),
        (DeviceStatus::Restored, Some("went offline during the soak")),
        (
            DeviceStatus::RestorePending {
                reason: "offline: it returns to the previous document when it is back".into(),
            },
            None,
        ),
    ];
    let ids: Vec<String> = (0..statuses.len()).map(|i| format!("gw-{i}")).collect();
    RolloutState {
        id: "0123456789abcdef".into(),
        group: "north".into(),
        operator: "ops".into(),
        started: 1,
        updated: 2,
        plan: Plan {
            waves: vec![Amount::Count(1), Amount::Percent(50), Amount::Percent(100)],
            soak: Duration::from_secs(60),
            max_failures: Amount::Percent(5),
            wave_timeout: Duration::from_secs(600),
        },
        entry: DesiredModule {
            id: "ticker".into(),
            artifact: ArtifactRef {
                sha256: [1; 32],
                len: 10,
                chunk_len: 1024,
                signature: None,
            },
            variants: vec![],
            component_toml: None,
            deployment_toml: String::new(),
            run: true,
            source: None,
        },
        waves: vec![ids[..1].to_vec(), ids[1..3].to_vec(), ids[3..].to_vec()],
        devices: statuses
            .into_iter()
            .enumerate()
            .map(|(i, (status, failure))| {
                (
                    ids[i].clone(),
                    DeviceProgress {
                        wave: u32::from(i >= 1) + u32::from(i >= 3),
                        version: Some(3),
                        restore_version: None,
                        status,
                        failure: failure.map(str::to_owned),
                    },
                )
            })
            .collect(),
        phase,
        skipped: vec![],
    }
}

#[test]
fn a_rollout_in_every_phase_and_device_status_matches_the_schema() {
    let mut schema = Schema::load();
    for phase in [
        RolloutPhase::Wave {
            index: 1,
            soak_until: None,
        },
        RolloutPhase::Wave {
            index: 2,
            soak_until: Some(99),
        },
        RolloutPhase::Finishing,
        RolloutPhase::Done,
        RolloutPhase::Aborting {
            reason: "3 failures".into(),
        },
        RolloutPhase::Aborted {
            reason: "aborted by ops".into(),
        },
    ] {
        let state = rollout(phase);
        let view = serde_json::to_value(RolloutView::new(&state)).unwrap();
        schema.assert_valid("rollout", &view);
        // A failed device returned to the previous document still counts.
        assert_eq!(view["failures"], 2, "{view}");
        assert_eq!(view["max_failures"], 0, "5% of 6 devices tolerates none: {view}");
        assert_eq!(view["waves"][2]["failed"], 2, "{view}");
        assert_eq!(
            view["devices"]["gw-3"]["reason"],
            "ticker: rolled back: trap \"unreachable\""
        );
    }
    let good = serde_json::to_value(RolloutView::new(&rollout(RolloutPhase::Aborted { reason: "x".into() }))).unwrap();
    let mut bad = good.clone();
    bad.as_object_mut().unwrap().remove("reason");
    assert!(schema.check("rollout", &bad).is_err(), "aborted without why");
    let mut bad = good.clone();
    bad["devices"]["gw-3"].as_object_mut().unwrap().remove("reason");
    assert!(schema.check("rollout", &bad).is_err(), "a failure without why");
    let mut bad = good;
    bad["phase"] = json!("paused");
    assert!(schema.check("rollout", &bad).is_err(), "an unknown phase");
}
