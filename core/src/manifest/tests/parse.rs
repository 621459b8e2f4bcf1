//! Parsing well-formed files: full and minimal, defaults, round trips.

use super::*;
use crate::protocol::{Isolation, ModuleKind};
use std::path::PathBuf;
use std::time::Duration;

#[test]
fn full_component() {
    let c = component(FULL_COMPONENT).unwrap();
    assert_eq!(
        c,
        ComponentManifest {
            name: "sensor-hub".into(),
            version: "1.2.0".into(),
            description: Some("Reads the sensors and publishes readings".into()),
            exports: vec!["_start".into(), "memory".into()],
            imports: vec!["wasi_snapshot_preview1".into()],
            entrypoint: Some("_start".into()),
        }
    );
}

#[test]
fn minimal_component_takes_defaults() {
    let c = component("name = \"x\"\nversion = \"1\"\n").unwrap();
    assert_eq!(c.description, None);
    assert!(c.exports.is_empty() && c.imports.is_empty());
    assert_eq!(c.entrypoint, None);
}

#[test]
fn full_deployment() {
    let d = deployment(FULL_DEPLOYMENT).unwrap();
    assert_eq!(d.kind, ModuleKind::Service);
    assert_eq!(d.isolation, Isolation::Main);
    assert!(d.trusted);
    assert!(!d.r#async);
    assert_eq!(d.group, "sensors");
    assert_eq!(
        d.startup,
        Startup {
            entrypoint: Some("_start".into()),
            shutdown: Some("on_stop".into()),
            autostart: false
        }
    );
    assert_eq!(
        d.limits,
        Limits {
            memory: Some(16 << 20),
            fuel: Some(1_000_000),
            timeout: None,
            stack: Some(65536)
        }
    );
    assert_eq!(
        d.restart,
        Restart {
            policy: RestartPolicy::Always,
            backoff_initial: Duration::from_millis(500),
            backoff_max: Duration::from_secs(120),
            max_restarts: 10,
            on_config_change: false,
        }
    );
    assert_eq!(
        d.capabilities.dirs,
        vec![
            DirCapability {
                host: PathBuf::from("/var/lib/sensor-hub"),
                guest: "/data".into(),
                read_only: false,
                quota: None,
            },
            DirCapability {
                host: PathBuf::from("/etc/sensor-hub"),
                guest: "/config".into(),
                read_only: true,
                quota: None,
            },
        ]
    );
    assert_eq!(d.capabilities.env.get("SITE").map(String::as_str), Some("north"));
    assert_eq!(d.capabilities.env.len(), 2);
    assert_eq!(d.capabilities.args, ["--verbose", "--port=7"]);
}

#[test]
fn empty_deployment_is_all_defaults() {
    let d = deployment("").unwrap();
    assert_eq!(d, DeploymentManifest::default());
    assert_eq!(d.kind, ModuleKind::Command);
    assert_eq!(d.isolation, Isolation::Worker);
    assert!(!d.trusted);
    assert!(d.r#async);
    assert_eq!(d.group, "default");
    assert_eq!(
        d.startup,
        Startup {
            entrypoint: None,
            shutdown: None,
            autostart: true
        }
    );
    assert_eq!(
        d.limits,
        Limits {
            memory: None,
            fuel: None,
            timeout: None,
            stack: None
        }
    );
    assert_eq!(d.restart.policy, RestartPolicy::OnFailure);
    assert_eq!(d.restart.backoff_initial, Duration::from_secs(1));
    assert_eq!(d.restart.backoff_max, Duration::from_secs(60));
    assert_eq!(d.restart.max_restarts, 5);
    assert_eq!(d.capabilities, Capabilities::default());
    // Empty tables are defaults too.
    assert_eq!(
        deployment("[startup]\n[limits]\n[restart]\n[capabilities]\n").unwrap(),
        d
    );
}

#[test]
fn round_trips_through_serde() {
    for text in [FULL_COMPONENT, "name = \"x\"\nversion = \"1\"\n"] {
        let c = component(text).unwrap();
        let back: ComponentManifest = toml::Value::try_from(&c).unwrap().try_into().unwrap();
        assert_eq!(back, c);
    }
    let with_timeout = "[limits]\ntimeout = \"1500ms\"\nmemory = 70000\n";
    for text in [FULL_DEPLOYMENT, "", with_timeout] {
        let d = deployment(text).unwrap();
        let value = toml::Value::try_from(&d).unwrap();
        let back: DeploymentManifest = value.clone().try_into().unwrap();
        assert_eq!(back, d, "{value:?}");
    }
    let value = toml::Value::try_from(deployment(with_timeout).unwrap()).unwrap();
    assert_eq!(value["limits"]["timeout"].as_str(), Some("1500ms"));
    assert_eq!(value["kind"].as_str(), Some("command"));
    assert_eq!(value["isolation"].as_str(), Some("worker"));
    assert_eq!(value["restart"]["policy"].as_str(), Some("on-failure"));
}
