//! The manifests against each other and against the artifact they
//! describe: identity, entrypoint, shutdown, declared exports.

use super::component::ComponentManifest;
use super::deployment::DeploymentManifest;
use super::error::{COMPONENT_FILE, DEPLOYMENT_FILE, ManifestError, MissingExport, Place};
use super::locate::KeyPath;
use super::names::{check_name, derive_id};
use crate::artifact::ArtifactKind;
use serde::{Deserialize, Serialize};

/// The entrypoint of a core module (WASI preview 1 command) by default.
pub const DEFAULT_MODULE_ENTRYPOINT: &str = "_start";
/// The entrypoint of a component by default: the `wasi:cli/run` interface.
pub const DEFAULT_COMPONENT_ENTRYPOINT: &str = "wasi:cli/run";
/// The version of a component without component.toml.
pub const DEFAULT_VERSION: &str = "0.0.0";

/// What the artifact itself says (the daemon fills it from wasmtime's
/// `Module`/`Component` types).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleInterface {
    pub kind: ArtifactKind,
    /// Export names: a core module's exports (`_start`, `memory`), or a
    /// component's (`wasi:cli/run@0.2.3`, or plain function names).
    pub exports: Vec<String>,
    pub imports: Vec<String>,
    /// The uploaded file's name (`hello.wasm`), for messages and as the
    /// source of a component's id when it has no component.toml.
    pub source_name: String,
}

impl ModuleInterface {
    /// Whether the artifact exports `name`: exactly for core modules; for
    /// components, also a versioned interface `name@…`.
    pub fn has_export(&self, name: &str) -> bool {
        self.exports.iter().any(|export| match self.kind {
            ArtifactKind::Module => export == name,
            ArtifactKind::Component => {
                export == name || export.strip_prefix(name).is_some_and(|rest| rest.starts_with('@'))
            }
        })
    }
}

/// The manifests after validation, with the module's identity resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Validated {
    /// The module id: component.toml's `name`, or derived from the file name.
    pub id: String,
    /// component.toml's `version`, or `"0.0.0"`.
    pub version: String,
    pub component: Option<ComponentManifest>,
    pub deployment: DeploymentManifest,
    /// The export to start, resolved and checked to exist.
    pub entrypoint: String,
}

/// Checks both manifests (their field rules again, so hand-built values are
/// covered too) and their fit with the artifact; resolves id, version and
/// entrypoint. Errors name component.toml or deployment.toml, without a
/// position: the daemon has the texts if it wants to say more.
pub fn validate(
    component: Option<ComponentManifest>,
    deployment: DeploymentManifest,
    interface: &ModuleInterface,
) -> Result<Validated, ManifestError> {
    deployment.check()?;
    if let Some(component) = &component {
        component.check()?;
    }
    let (id, version) = identity(component.as_ref(), interface)?;
    if interface.kind == ArtifactKind::Module && !deployment.capabilities.network.is_empty() {
        return Err(ManifestError::Invalid {
            place: Place::file(DEPLOYMENT_FILE),
            key: KeyPath::new("capabilities").key("network"),
            message: format!(
                "grants sockets, but `{}` is a core module (WASI preview 1), which has no socket API; \
                 network grants apply to components (WASI preview 2): rebuild it as a component (for \
                 example for the wasm32-wasip2 target), or remove [capabilities.network]",
                interface.source_name
            ),
        });
    }
    if interface.kind == ArtifactKind::Module && deployment.http.is_some() {
        return Err(ManifestError::Invalid {
            place: Place::file(DEPLOYMENT_FILE),
            key: KeyPath::new("http"),
            message: format!(
                "serves `{}`'s wasi:http/incoming-handler, but it is a core module (WASI preview 1), which has \
                 no HTTP API: build it as a component exporting wasi:http/incoming-handler, or remove [http]",
                interface.source_name
            ),
        });
    }
    if interface.kind == ArtifactKind::Module && deployment.capabilities.messaging.is_some() {
        return Err(ManifestError::Invalid {
            place: Place::file(DEPLOYMENT_FILE),
            key: KeyPath::new("capabilities").key("messaging"),
            message: format!(
                "grants wasi:messaging, but `{}` is a core module (WASI preview 1), which cannot import it: \
                 build it as a component (wasm32-wasip2), or remove [capabilities.messaging]",
                interface.source_name
            ),
        });
    }
    let missing = |file: &str, key: Option<KeyPath>, name: &str| {
        ManifestError::MissingExport(Box::new(MissingExport {
            place: Place::file(file),
            key,
            name: name.to_owned(),
            artifact: interface.kind,
            source_name: interface.source_name.clone(),
            exports: interface.exports.clone(),
        }))
    };

    let from_component = component.as_ref().and_then(|c| c.entrypoint.clone());
    let (entrypoint, file, key) = match (&deployment.startup.entrypoint, from_component) {
        (Some(e), _) => (
            e.clone(),
            DEPLOYMENT_FILE,
            Some(KeyPath::new("startup").key("entrypoint")),
        ),
        (None, Some(e)) => (e, COMPONENT_FILE, Some(KeyPath::new("entrypoint"))),
        (None, None) if deployment.kind == crate::protocol::ModuleKind::Provider => {
            // A provider is entered through the interfaces it exports.
            let offered = interface.exports.iter().find(|e| !e.starts_with("wasi:"));
            match offered {
                Some(export) => (export.clone(), DEPLOYMENT_FILE, Some(KeyPath::new("kind"))),
                None => {
                    return Err(ManifestError::Invalid {
                        place: Place::file(DEPLOYMENT_FILE),
                        key: KeyPath::new("kind"),
                        message: format!(
                            "= \"provider\", but `{}` exports no interface for other modules to call (only {}): \
                             export one (`acme:thermo/sensor@1.0.0`, say), or make it a service or command",
                            interface.source_name,
                            if interface.exports.is_empty() {
                                "nothing".to_owned()
                            } else {
                                interface.exports.join(", ")
                            }
                        ),
                    });
                }
            }
        }
        (None, None) if deployment.http.is_some() => (
            super::http::INCOMING_HANDLER.to_owned(),
            DEPLOYMENT_FILE,
            Some(KeyPath::new("http")),
        ),
        (None, None) if subscribes(&deployment) && !interface.has_export(default_entrypoint(interface.kind)) => (
            crate::host::messaging::HANDLER.to_owned(),
            DEPLOYMENT_FILE,
            Some(KeyPath::new("capabilities").key("messaging").key("subscribe")),
        ),
        (None, None) => (default_entrypoint(interface.kind).to_owned(), DEPLOYMENT_FILE, None),
    };
    if subscribes(&deployment) && !interface.has_export(crate::host::messaging::HANDLER) {
        return Err(missing(
            DEPLOYMENT_FILE,
            Some(KeyPath::new("capabilities").key("messaging").key("subscribe")),
            crate::host::messaging::HANDLER,
        ));
    }
    if !interface.has_export(&entrypoint) {
        return Err(missing(file, key, &entrypoint));
    }
    if let Some(shutdown) = &deployment.startup.shutdown
        && !interface.has_export(shutdown)
    {
        return Err(missing(
            DEPLOYMENT_FILE,
            Some(KeyPath::new("startup").key("shutdown")),
            shutdown,
        ));
    }
    if let Some(component) = &component
        && let Some((i, export)) = component
            .exports
            .iter()
            .enumerate()
            .find(|(_, e)| !interface.has_export(e))
    {
        return Err(missing(COMPONENT_FILE, Some(KeyPath::new("exports").index(i)), export));
    }
    Ok(Validated {
        id,
        version,
        component,
        deployment,
        entrypoint,
    })
}

/// Whether the module's handler receives messages.
fn subscribes(deployment: &DeploymentManifest) -> bool {
    deployment
        .capabilities
        .messaging
        .as_ref()
        .is_some_and(|m| !m.subscribe.is_empty())
}

/// The entrypoint used when neither manifest names one.
pub fn default_entrypoint(kind: ArtifactKind) -> &'static str {
    match kind {
        ArtifactKind::Module => DEFAULT_MODULE_ENTRYPOINT,
        ArtifactKind::Component => DEFAULT_COMPONENT_ENTRYPOINT,
    }
}

/// Rules 2 and 3: id and version from component.toml, or (components
/// only) from the file name.
fn identity(
    component: Option<&ComponentManifest>,
    interface: &ModuleInterface,
) -> Result<(String, String), ManifestError> {
    if let Some(component) = component {
        return Ok((component.name.clone(), component.version.clone()));
    }
    let source_name = interface.source_name.clone();
    if interface.kind == ArtifactKind::Module {
        return Err(ManifestError::ComponentManifestRequired {
            place: Place::file(COMPONENT_FILE),
            source_name,
        });
    }
    let derived = derive_id(&source_name);
    match check_name(&derived) {
        Ok(()) => Ok((derived, DEFAULT_VERSION.to_owned())),
        Err(reason) => Err(ManifestError::BadDerivedId {
            place: Place::file(COMPONENT_FILE),
            source_name,
            derived,
            reason,
        }),
    }
}
