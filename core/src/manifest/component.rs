//! `component.toml`: what a module is. Written by the module's author,
//! shipped with the module, the same on every device.

use super::error::{COMPONENT_FILE, ManifestError, Place};
use super::locate::KeyPath;
use super::names::{check_name, check_no_nul, check_symbol, check_version};
use serde::{Deserialize, Serialize};

/// The contents of `component.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentManifest {
    /// The module id: 1..=63 characters of `[a-z0-9_-]`, starting with `[a-z0-9]`.
    pub name: String,
    /// Free-form (e.g. `1.2.0`): non-empty, without whitespace, at most
    /// [`super::MAX_VERSION_LEN`] bytes.
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Declared exports: informational, and each checked against the binary.
    #[serde(default)]
    pub exports: Vec<String>,
    /// Declared imports: informational.
    #[serde(default)]
    pub imports: Vec<String>,
    /// The export started, when deployment.toml does not say; defaults to
    /// `_start` for core modules and `wasi:cli/run` for components.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<String>,
}

impl ComponentManifest {
    /// The field-level rules of component.toml, on their own (errors name
    /// [`COMPONENT_FILE`], without a position).
    pub fn check(&self) -> Result<(), ManifestError> {
        let invalid = |key: KeyPath, value: &str, reason: String| ManifestError::Invalid {
            place: Place::file(COMPONENT_FILE),
            key,
            message: format!("= {value:?} {reason}"),
        };
        check_name(&self.name).map_err(|m| invalid(KeyPath::new("name"), &self.name, m))?;
        check_version(&self.version).map_err(|m| invalid(KeyPath::new("version"), &self.version, m))?;
        if let Some(description) = &self.description {
            check_no_nul(description).map_err(|m| invalid(KeyPath::new("description"), description, m))?;
        }
        for (key, list) in [("exports", &self.exports), ("imports", &self.imports)] {
            for (i, item) in list.iter().enumerate() {
                check_symbol(item).map_err(|m| invalid(KeyPath::new(key).index(i), item, m))?;
            }
        }
        if let Some(entrypoint) = &self.entrypoint {
            check_symbol(entrypoint).map_err(|m| invalid(KeyPath::new("entrypoint"), entrypoint, m))?;
        }
        Ok(())
    }
}
