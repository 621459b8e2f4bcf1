//! [`ManifestError`]: every way a manifest is refused. Each message names
//! the file (and, when known, the line and column), the key, and what to do.

use super::locate::{KeyPath, KeySegment, Location, path_at, span_of};
use crate::artifact::ArtifactKind;
use serde::{Deserialize, Serialize};
use std::fmt;
use toml::de::DeTable;

/// The usual name of the file describing what a module is.
pub const COMPONENT_FILE: &str = "component.toml";
/// The usual name of the file describing how this device runs a module.
pub const DEPLOYMENT_FILE: &str = "deployment.toml";

/// Where an error is: a file, and a position in it when known.
/// Displays as `file:line:column` or `file`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Place {
    pub file: String,
    pub at: Option<Location>,
}

impl Place {
    /// `file`, position unknown.
    pub fn file(file: &str) -> Self {
        Self {
            file: file.to_owned(),
            at: None,
        }
    }
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.at {
            Some(Location { line, column }) => write!(f, "{}:{line}:{column}", self.file),
            None => f.write_str(&self.file),
        }
    }
}

/// Why a manifest (or the pair, against its artifact) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// Not TOML, or TOML of the wrong shape: an unknown key, a wrong type, a
    /// missing key, a value outside an enumeration.
    #[error("{place}: {}{message}", KeyPrefix(key.as_ref()))]
    Syntax {
        place: Place,
        key: Option<KeyPath>,
        message: String,
    },
    /// A value that parsed but breaks a rule; `message` says the rule.
    #[error("{place}: `{key}` {message}")]
    Invalid {
        place: Place,
        key: KeyPath,
        message: String,
    },
    /// Rule 1: untrusted code never runs inside the daemon.
    #[error(
        "{place}: `isolation = \"main\"` with `trusted = false`: an untrusted module never runs in the daemon's \
         process; use isolation = \"worker\", or set trusted = true only if you vouch for the code"
    )]
    UntrustedInMain { place: Place },
    /// Rule 9: a timeout bounds a command's run; a service runs until stopped.
    #[error(
        "{place}: `limits.timeout` is set but kind = \"service\": a timeout applies to commands only (a service \
         runs until stopped); remove the timeout, or use kind = \"command\""
    )]
    TimeoutOnService { place: Place },
    /// Rule 2: a core module has no interface description of its own.
    #[error(
        "{place}: missing, but `{source_name}` is a core module (WASI preview 1), which carries no interface \
         description; provide a component.toml with at least `name` and `version`"
    )]
    ComponentManifestRequired { place: Place, source_name: String },
    /// Rule 3: without component.toml, the id derived from the file name is not a valid module name.
    #[error(
        "{place}: missing, and the module id derived from the file name `{source_name}` is `{derived}`, which \
         {reason}; provide a component.toml with a valid `name`"
    )]
    BadDerivedId {
        place: Place,
        source_name: String,
        derived: String,
        reason: String,
    },
    /// Rules 4–6: a manifest names an export the artifact does not have.
    #[error("{0}")]
    MissingExport(Box<MissingExport>),
}

impl ManifestError {
    /// Which file, and where in it when known.
    pub fn place(&self) -> &Place {
        match self {
            Self::Syntax { place, .. }
            | Self::Invalid { place, .. }
            | Self::UntrustedInMain { place }
            | Self::TimeoutOnService { place }
            | Self::ComponentManifestRequired { place, .. }
            | Self::BadDerivedId { place, .. } => place,
            Self::MissingExport(missing) => &missing.place,
        }
    }

    fn place_mut(&mut self) -> &mut Place {
        match self {
            Self::Syntax { place, .. }
            | Self::Invalid { place, .. }
            | Self::UntrustedInMain { place }
            | Self::TimeoutOnService { place }
            | Self::ComponentManifestRequired { place, .. }
            | Self::BadDerivedId { place, .. } => place,
            Self::MissingExport(missing) => &mut missing.place,
        }
    }

    /// The key the error is about, when there is one.
    pub fn key(&self) -> Option<KeyPath> {
        match self {
            Self::Syntax { key, .. } => key.clone(),
            Self::MissingExport(missing) => missing.key.clone(),
            Self::Invalid { key, .. } => Some(key.clone()),
            Self::UntrustedInMain { .. } => Some(KeyPath::new("isolation")),
            Self::TimeoutOnService { .. } => Some(KeyPath::new("limits").key("timeout")),
            Self::ComponentManifestRequired { .. } | Self::BadDerivedId { .. } => None,
        }
    }

    /// Names `file` and, by finding the error's key in `text`, the position.
    pub(crate) fn in_text(mut self, file: &str, text: &str) -> Self {
        let key = self.key();
        let place = self.place_mut();
        file.clone_into(&mut place.file);
        if let (None, Some(key), Ok(doc)) = (place.at, key, DeTable::parse(text)) {
            place.at = span_of(&doc, &key).map(|span| Location::of(text, span.start));
        }
        self
    }

    /// A toml error, placed in `text` and with the key under it named.
    pub(crate) fn from_toml(file: &str, text: &str, error: &toml::de::Error) -> Self {
        // Recovery keeps what parsed around a syntax error, enough to name the key.
        let (doc, _) = DeTable::parse_recoverable(text);
        let mut message = tidy(error.message());
        let mut span = error.span();
        let key = span.as_ref().and_then(|s| path_at(&doc, text, s));
        if let Some(s) = &span {
            if message == "duplicate key"
                && let Some(dup) = text.get(s.clone())
            {
                message = format!("duplicate key `{dup}`; each key may be set once");
            }
            if doc.span() == *s {
                // About the whole document (a missing top-level key): no position.
                span = None;
            }
        }
        Self::Syntax {
            place: Place {
                file: file.to_owned(),
                at: span.map(|s| Location::of(text, s.start)),
            },
            key,
            message,
        }
    }
}

/// Serde speaks of fields, structs, maps and sequences; a TOML author
/// writes keys, tables and arrays.
fn tidy(message: &str) -> String {
    let mut out = message
        .trim_end()
        .replace("unknown field", "unknown key")
        .replace("missing field", "missing key")
        .replace("unknown variant", "unknown value")
        .replace("expected a sequence", "expected an array")
        .replace("expected a map", "expected a table");
    while let Some(at) = out.find("expected struct ") {
        let rest = &out[at + "expected struct ".len()..];
        let name_len = rest
            .find(|c: char| !c.is_ascii_alphanumeric() && c != '_')
            .unwrap_or(rest.len());
        out.replace_range(at..at + "expected struct ".len() + name_len, "expected a table");
    }
    out
}

struct KeyPrefix<'a>(Option<&'a KeyPath>);

impl fmt::Display for KeyPrefix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(key) if !key.segments().is_empty() => write!(f, "`{key}`: "),
            _ => Ok(()),
        }
    }
}

/// What [`ManifestError::MissingExport`] says: `key` names `name`, which the
/// artifact does not export. `key` is `None` for the default entrypoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingExport {
    pub place: Place,
    pub key: Option<KeyPath>,
    pub name: String,
    pub artifact: ArtifactKind,
    pub source_name: String,
    pub exports: Vec<String>,
}

impl fmt::Display for MissingExport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 24;
        let Self {
            place,
            key,
            name,
            artifact,
            source_name,
            exports,
        } = self;
        write!(f, "{place}: ")?;
        match key {
            Some(key) => write!(
                f,
                "`{key}` = {name:?}, but the {artifact} `{source_name}` exports no `{name}`"
            )?,
            None => write!(
                f,
                "the default entrypoint `{name}` is not exported by the {artifact} `{source_name}`"
            )?,
        }
        f.write_str(" (its exports: ")?;
        if exports.is_empty() {
            f.write_str("(none)")?;
        }
        for (i, export) in exports.iter().take(SHOWN).enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "`{export}`")?;
        }
        if exports.len() > SHOWN {
            write!(f, " and {} more", exports.len() - SHOWN)?;
        }
        f.write_str("); ")?;
        let declared = key
            .as_ref()
            .and_then(|k| k.segments().first())
            .is_some_and(|s| *s == KeySegment::Key("exports".into()));
        f.write_str(match key {
            None => "set `startup.entrypoint` in deployment.toml to the export to start",
            Some(_) if declared => "remove it from `exports`, or check that this is the right binary",
            Some(_) => "name one of its exports",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tidy_speaks_toml() {
        assert_eq!(
            tidy("invalid type: integer `3`, expected struct Limits"),
            "invalid type: integer `3`, expected a table"
        );
        assert_eq!(tidy("unknown field `x`, expected `a`"), "unknown key `x`, expected `a`");
        assert_eq!(tidy("missing field `name`\n"), "missing key `name`");
        assert_eq!(
            tidy("unknown variant `x`, expected `a`"),
            "unknown value `x`, expected `a`"
        );
    }

    #[test]
    fn place_displays_position_when_known() {
        assert_eq!(Place::file("a.toml").to_string(), "a.toml");
        let p = Place {
            file: "a.toml".into(),
            at: Some(Location { line: 3, column: 7 }),
        };
        assert_eq!(p.to_string(), "a.toml:3:7");
    }
}
