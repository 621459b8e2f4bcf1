//! `component.toml` (what a module is) and `deployment.toml` (how this
//! device runs it): parsing, field rules, and validation against the
//! artifact. The reference for both files is `docs/manifests.md`.
//!
//! [`parse_component`] and [`parse_deployment`] each read one file and apply
//! its own rules, with errors placed at `file:line:column` and naming the
//! key; [`validate`] then checks the pair against the artifact's
//! [`ModuleInterface`] and resolves the module's id, version and
//! entrypoint.

mod capabilities;
mod component;
mod config;
mod deployment;
mod enums;
mod error;
mod http;
pub mod imports;
mod keyvalue;
mod locate;
pub mod logs;
mod messaging;
mod names;
mod network;
mod units;
mod validate;

#[cfg(test)]
mod tests;

pub use capabilities::{Capabilities, DirCapability};
pub use capabilities::{MAX_CAPABILITIES_BYTES, QUOTA_PERIOD};
pub use component::ComponentManifest;
pub use config::{
    MAX_CONFIG_BYTES, MAX_CONFIG_KEY, MAX_CONFIG_VALUE, check_config_entry, check_config_key, check_config_size,
    config_bytes,
};
pub use deployment::{
    DeploymentManifest, Limits, MAX_HEALTH_WINDOW, MIN_BACKOFF, MIN_MEMORY, MIN_STACK, Restart, RestartPolicy, Startup,
    Update, UpdateStrategy,
};
pub use enums::{isolation_name, kind_name};
pub use error::{COMPONENT_FILE, DEPLOYMENT_FILE, ManifestError, MissingExport, Place};
pub use http::{DEFAULT_INSTANCES, HttpSection, INCOMING_HANDLER};
pub use keyvalue::{DEFAULT_KV_QUOTA, KeyValueCapability};
pub use locate::{KeyPath, KeySegment, Location};
pub use messaging::MessagingCapability;
pub use names::{MAX_NAME_LEN, MAX_SYMBOL_LEN, MAX_VERSION_LEN, check_name, derive_id};
pub use network::NetworkCapability;
pub use validate::{
    DEFAULT_COMPONENT_ENTRYPOINT, DEFAULT_MODULE_ENTRYPOINT, DEFAULT_VERSION, ModuleInterface, Validated,
    default_entrypoint, validate,
};

/// Parses the text of a `component.toml` and applies its field rules.
/// `file` names it in errors (e.g. `"component.toml"` or a path).
pub fn parse_component(text: &str, file: &str) -> Result<ComponentManifest, ManifestError> {
    let manifest: ComponentManifest = toml::from_str(text).map_err(|e| ManifestError::from_toml(file, text, &e))?;
    manifest.check().map_err(|e| e.in_text(file, text))?;
    Ok(manifest)
}

/// Parses the text of a `deployment.toml` and applies its field rules
/// (including rules 1 and 7–9 of `docs/manifests.md`, which need no
/// artifact). `file` names it in errors.
pub fn parse_deployment(text: &str, file: &str) -> Result<DeploymentManifest, ManifestError> {
    let manifest: DeploymentManifest = toml::from_str(text).map_err(|e| ManifestError::from_toml(file, text, &e))?;
    manifest.check().map_err(|e| e.in_text(file, text))?;
    Ok(manifest)
}
