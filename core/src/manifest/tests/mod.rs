//! Tests of the manifest module as a whole: parsing, field rules,
//! validation against an interface, and a fuzz of both parsers.

mod docs;
mod http;
mod network;
mod parse;
mod prop;
mod rules;
mod shape;
mod validate;

use super::*;
use crate::artifact::ArtifactKind;

/// docs/manifests.md, whose examples are tested as code.
pub(super) const MANIFESTS_DOC: &str = include_str!("../../../../docs/manifests.md");

/// The docs' untagged example block that starts with `first_lines`.
pub(super) fn doc_block(first_lines: &str) -> &'static str {
    let start = MANIFESTS_DOC.find(&format!("```\n{first_lines}")).expect("the example") + 4;
    let len = MANIFESTS_DOC[start..].find("```").expect("its end");
    &MANIFESTS_DOC[start..start + len]
}

/// A component.toml with every key.
pub(super) const FULL_COMPONENT: &str = r#"
name = "sensor-hub"
version = "1.2.0"
description = "Reads the sensors and publishes readings"
exports = ["_start", "memory"]
imports = ["wasi_snapshot_preview1"]
entrypoint = "_start"
"#;

/// A deployment.toml with every key.
pub(super) const FULL_DEPLOYMENT: &str = r#"
kind = "service"
isolation = "main"
trusted = true
async = false
group = "sensors"

[startup]
entrypoint = "_start"
shutdown = "on_stop"
autostart = false

[limits]
memory = "16M"
fuel = 1000000
stack = 65536

[restart]
policy = "always"
backoff_initial = "500ms"
backoff_max = "2m"
max_restarts = 10

[[capabilities.dirs]]
host = "/var/lib/sensor-hub"
guest = "/data"
mode = "rw"

[[capabilities.dirs]]
host = "/etc/sensor-hub"
guest = "/config"

[capabilities.env]
RUST_LOG = "info"
SITE = "north"

[capabilities]
args = ["--verbose", "--port=7"]
"#;

pub(super) fn component(text: &str) -> Result<ComponentManifest, ManifestError> {
    parse_component(text, COMPONENT_FILE)
}

pub(super) fn deployment(text: &str) -> Result<DeploymentManifest, ManifestError> {
    parse_deployment(text, DEPLOYMENT_FILE)
}

/// The message of a deployment.toml that must be refused.
pub(super) fn deployment_err(text: &str) -> String {
    match deployment(text) {
        Ok(d) => panic!("accepted {text:?} as {d:?}"),
        Err(e) => e.to_string(),
    }
}

/// The message of a component.toml that must be refused.
pub(super) fn component_err(text: &str) -> String {
    match component(text) {
        Ok(c) => panic!("accepted {text:?} as {c:?}"),
        Err(e) => e.to_string(),
    }
}

pub(super) fn interface(kind: ArtifactKind, exports: &[&str]) -> ModuleInterface {
    ModuleInterface {
        kind,
        exports: exports.iter().map(|e| (*e).to_owned()).collect(),
        imports: Vec::new(),
        source_name: match kind {
            ArtifactKind::Module => "sensor.wasm".to_owned(),
            ArtifactKind::Component => "Sensor Hub.wasm".to_owned(),
        },
    }
}

/// Asserts `message` contains each of `parts`.
#[track_caller]
pub(super) fn assert_mentions(message: &str, parts: &[&str]) {
    for part in parts {
        assert!(message.contains(part), "{message:?} does not mention {part:?}");
    }
}
