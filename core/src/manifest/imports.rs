//! Typed calls between components, as deployment.toml grants them.
//!
//! A consumer names, per imported interface, the provider module it may
//! be linked to (or `"*"`: any running provider of a compatible version);
//! an import of an interface the daemon does not provide and this table
//! does not grant is refused at install. `[calls]` bounds the consumer's
//! waiting. A provider (`kind = "provider"`) sets its pool in `[provider]`.
//!
//! ```toml
//! [imports]
//! "acme:thermo/sensor" = "thermo"     # or "*"
//!
//! [calls]
//! timeout = "5s"                  # a call not answered by then traps the caller (default 10s)
//! when_provider_stops = "wait"    # "wait": back to `waiting` until a provider returns; "stop"
//!
//! [provider]                      # kind = "provider" only
//! instances = 2                   # calls served at once, one per instance (1–16, default 1)
//! ```

use super::locate::KeyPath;
use super::units::duration;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// `[imports]` value meaning "any running provider".
pub const ANY_PROVIDER: &str = "*";

/// How long a call may wait for its answer unless `[calls] timeout` says.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Instances a provider may run at once (`[provider] instances`).
pub const MAX_PROVIDER_INSTANCES: u16 = 16;

/// `[imports]`: interface (`package:name/interface`, no version) →
/// provider module id or `"*"`.
pub type ImportsSection = BTreeMap<String, String>;

/// What a consumer does when the provider it is linked to is stopped or
/// removed (not when it is updated or restarted: calls wait for those).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WhenProviderStops {
    /// The consumer is stopped and waits (state `waiting`) until a
    /// provider is running again, then starts.
    #[default]
    Wait,
    /// The consumer is stopped and stays stopped.
    Stop,
}

/// `[calls]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CallsSection {
    #[serde(with = "duration")]
    pub timeout: Duration,
    pub when_provider_stops: WhenProviderStops,
}

impl Default for CallsSection {
    fn default() -> Self {
        Self {
            timeout: DEFAULT_CALL_TIMEOUT,
            when_provider_stops: WhenProviderStops::Wait,
        }
    }
}

/// `[provider]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProviderSection {
    pub instances: u16,
}

impl Default for ProviderSection {
    fn default() -> Self {
        Self { instances: 1 }
    }
}

/// Checks `[imports]`, `[calls]` and `[provider]`; the error is the key
/// and what to fix.
pub fn check(
    imports: &ImportsSection,
    calls: &CallsSection,
    provider: &ProviderSection,
) -> Result<(), (KeyPath, String)> {
    for (interface, provider) in imports {
        let key = || KeyPath::new("imports").key(interface);
        let well_formed = interface
            .split_once(':')
            .and_then(|(package, rest)| rest.split_once('/').map(|(name, iface)| (package, name, iface)))
            .is_some_and(|(a, b, c)| [a, b, c].iter().all(|s| !s.is_empty() && !s.contains(['@', ' '])));
        if !well_formed {
            return Err((
                key(),
                "is not an interface name: write it as `package:name/interface` without a version (for \
                 example \"acme:thermo/sensor\")"
                    .to_owned(),
            ));
        }
        if interface.starts_with("wasi:") || interface.starts_with("arcella:") {
            return Err((
                key(),
                "is served by the daemon itself (`arcella info` lists what it provides); remove it from \
                 [imports]"
                    .to_owned(),
            ));
        }
        if provider != ANY_PROVIDER && super::names::check_name(provider).is_err() {
            return Err((
                key(),
                format!("= {provider:?} is not a module id: name the provider module, or \"*\" for any"),
            ));
        }
    }
    if calls.timeout.is_zero() || calls.timeout > Duration::from_secs(3600) {
        return Err((
            KeyPath::new("calls").key("timeout"),
            "must be between 1ms and 1h".to_owned(),
        ));
    }
    if provider.instances == 0 || provider.instances > MAX_PROVIDER_INSTANCES {
        return Err((
            KeyPath::new("provider").key("instances"),
            format!(
                "= {} must be between 1 and {MAX_PROVIDER_INSTANCES}",
                provider.instances
            ),
        ));
    }
    Ok(())
}
