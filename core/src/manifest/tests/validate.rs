//! `validate`: the manifests against each other and the artifact.

use super::*;
use crate::artifact::ArtifactKind::{Component, Module};

fn hello() -> ComponentManifest {
    component("name = \"hello\"\nversion = \"0.1.0\"\n").unwrap()
}

fn refused(component: Option<ComponentManifest>, deployment_text: &str, interface: &ModuleInterface) -> String {
    match validate(component, deployment(deployment_text).unwrap(), interface) {
        Ok(v) => panic!("accepted as {v:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_module_with_both_files() {
    let v = validate(
        Some(hello()),
        deployment("").unwrap(),
        &interface(Module, &["_start", "memory"]),
    )
    .unwrap();
    assert_eq!(
        (v.id.as_str(), v.version.as_str(), v.entrypoint.as_str()),
        ("hello", "0.1.0", "_start")
    );
    assert_eq!(v.component, Some(hello()));
    assert_eq!(v.deployment, DeploymentManifest::default());
}

#[test]
fn a_core_module_needs_component_toml() {
    let e = validate(None, deployment("").unwrap(), &interface(Module, &["_start"])).unwrap_err();
    assert!(matches!(e, ManifestError::ComponentManifestRequired { .. }), "{e:?}");
    let message = e.to_string();
    assert!(
        message.starts_with("component.toml: missing, but `sensor.wasm` is a core module"),
        "{message}"
    );
    assert_mentions(
        &message,
        &["provide a component.toml with at least `name` and `version`"],
    );
}

#[test]
fn a_component_without_component_toml_is_named_after_its_file() {
    let v = validate(
        None,
        deployment("").unwrap(),
        &interface(Component, &["wasi:cli/run@0.2.3"]),
    )
    .unwrap();
    assert_eq!((v.id.as_str(), v.version.as_str()), ("sensor-hub", DEFAULT_VERSION));
    assert_eq!(v.entrypoint, DEFAULT_COMPONENT_ENTRYPOINT);
    assert_eq!(v.component, None);

    let mut bad = interface(Component, &["wasi:cli/run@0.2.3"]);
    bad.source_name = "_private.wasm".into();
    let message = refused(None, "", &bad);
    assert!(
        message.starts_with("component.toml: missing, and the module id derived from the file name"),
        "{message}"
    );
    assert_mentions(
        &message,
        &["`_private.wasm`", "is `_private`", "starts with \"_\"", "valid `name`"],
    );
}

#[test]
fn entrypoint_precedence() {
    let exports = interface(Module, &["_start", "run", "main"]);
    let mut c = hello();
    c.entrypoint = Some("run".into());
    let v = validate(Some(c.clone()), deployment("").unwrap(), &exports).unwrap();
    assert_eq!(v.entrypoint, "run");
    let v = validate(
        Some(c),
        deployment("[startup]\nentrypoint = \"main\"").unwrap(),
        &exports,
    )
    .unwrap();
    assert_eq!(v.entrypoint, "main");
}

#[test]
fn a_missing_entrypoint_is_named_with_the_exports() {
    let message = refused(Some(hello()), "", &interface(Module, &["memory", "run"]));
    assert!(
        message.starts_with("deployment.toml: the default entrypoint `_start` is not exported"),
        "{message}"
    );
    assert_mentions(
        &message,
        &["core module `sensor.wasm` (its exports: `memory`, `run`); set `startup.entrypoint`"],
    );

    let message = refused(
        Some(hello()),
        "[startup]\nentrypoint = \"go\"",
        &interface(Module, &["_start"]),
    );
    assert!(
        message.starts_with("deployment.toml: `startup.entrypoint` = \"go\", but the core module"),
        "{message}"
    );
    assert_mentions(
        &message,
        &["exports no `go` (its exports: `_start`); name one of its exports"],
    );

    let mut c = hello();
    c.entrypoint = Some("go".into());
    let message = refused(Some(c), "", &interface(Module, &[]));
    assert!(
        message.starts_with("component.toml: `entrypoint` = \"go\""),
        "{message}"
    );
    assert_mentions(&message, &["its exports: (none)"]);
}

#[test]
fn core_module_exports_match_exactly() {
    let message = refused(Some(hello()), "", &interface(Module, &["_start@1"]));
    assert_mentions(&message, &["`_start` is not exported"]);
}

#[test]
fn component_exports_match_by_interface_name() {
    let i = interface(
        Component,
        &["wasi:cli/run@0.2.3", "wasi:http/incoming-handler@0.2.0", "stop"],
    );
    let text = "kind = \"service\"\n[startup]\nentrypoint = \"wasi:http/incoming-handler\"\nshutdown = \"stop\"";
    let v = validate(None, deployment(text).unwrap(), &i).unwrap();
    assert_eq!(v.entrypoint, "wasi:http/incoming-handler");
    // A prefix without '@' is another name.
    let message = refused(None, "[startup]\nentrypoint = \"wasi:cli/ru\"", &i);
    assert_mentions(
        &message,
        &["`startup.entrypoint` = \"wasi:cli/ru\"", "component `Sensor Hub.wasm`"],
    );
    let message = refused(None, "", &interface(Component, &["run"]));
    assert_mentions(&message, &["default entrypoint `wasi:cli/run`", "exports: `run`"]);
}

#[test]
fn shutdown_must_be_exported() {
    let message = refused(
        Some(hello()),
        "[startup]\nshutdown = \"halt\"",
        &interface(Module, &["_start"]),
    );
    assert!(
        message.starts_with("deployment.toml: `startup.shutdown` = \"halt\""),
        "{message}"
    );
    assert_mentions(&message, &["exports no `halt`"]);
    validate(
        Some(hello()),
        deployment("[startup]\nshutdown = \"halt\"").unwrap(),
        &interface(Module, &["_start", "halt"]),
    )
    .unwrap();
}

#[test]
fn declared_exports_must_be_present() {
    let mut c = hello();
    c.exports = vec!["_start".into(), "memory".into(), "tick".into()];
    let message = refused(Some(c.clone()), "", &interface(Module, &["_start", "memory"]));
    assert!(
        message.starts_with("component.toml: `exports[2]` = \"tick\""),
        "{message}"
    );
    assert_mentions(&message, &["exports no `tick`", "remove it from `exports`"]);
    validate(
        Some(c),
        deployment("").unwrap(),
        &interface(Module, &["_start", "memory", "tick"]),
    )
    .unwrap();
}

#[test]
fn field_rules_apply_to_hand_built_manifests() {
    let i = interface(Module, &["_start"]);
    let mut d = DeploymentManifest {
        trusted: false,
        ..Default::default()
    };
    d.isolation = crate::protocol::Isolation::Main;
    let e = validate(Some(hello()), d, &i).unwrap_err();
    assert!(matches!(e, ManifestError::UntrustedInMain { .. }));
    assert!(e.to_string().starts_with("deployment.toml: "));

    let mut d = DeploymentManifest {
        kind: crate::protocol::ModuleKind::Service,
        ..Default::default()
    };
    d.limits.timeout = Some(std::time::Duration::from_secs(1));
    let e = validate(Some(hello()), d, &i).unwrap_err();
    assert!(matches!(e, ManifestError::TimeoutOnService { .. }), "{e:?}");

    let mut c = hello();
    c.name = "Bad".into();
    let e = validate(Some(c), DeploymentManifest::default(), &i).unwrap_err();
    assert!(e.to_string().starts_with("component.toml: `name` = \"Bad\""), "{e}");

    let mut d = DeploymentManifest::default();
    d.limits.memory = Some(1);
    let e = validate(Some(hello()), d, &i).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("deployment.toml: `limits.memory` = 1 bytes is too small"),
        "{e}"
    );
}

#[test]
fn the_hello_example_validates() {
    let c = parse_component(
        include_str!("../../../../examples/hello/component.toml"),
        COMPONENT_FILE,
    )
    .unwrap();
    let d = parse_deployment(
        include_str!("../../../../examples/hello/deployment.toml"),
        DEPLOYMENT_FILE,
    )
    .unwrap();
    let v = validate(Some(c), d, &interface(Module, &["memory", "_start"])).unwrap();
    assert_eq!(v.id, "hello");
    assert_eq!(v.entrypoint, "_start");
    assert!(v.deployment.trusted);
    assert_eq!(v.deployment.isolation, crate::protocol::Isolation::Main);
    assert_eq!(v.deployment.kind, crate::protocol::ModuleKind::Command);
}
