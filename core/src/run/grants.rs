//! Capabilities granted to a guest. Deny-by-default: the guest gets exactly
//! these directories, these environment variables, these arguments and
//! these network rules (`crate::host::network`); nothing inherited from the
//! host environment.

use super::capture::LogSink;
use std::path::PathBuf;
use std::str::FromStr;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

/// A host directory the guest may see, under a guest path.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DirGrant {
    pub host: PathBuf,
    pub guest: String,
    pub read_only: bool,
}

/// Why a grant was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GrantError {
    #[error("`{0}`: expected HOST::GUEST or HOST::GUEST:ro (for example ./data::/data:ro)")]
    BadDirSyntax(String),
    #[error("`{0}`: expected KEY=VALUE with a non-empty KEY")]
    BadEnvSyntax(String),
    #[error("granted directory {host} cannot be opened: {reason}")]
    DirUnavailable { host: String, reason: String },
}

impl FromStr for DirGrant {
    type Err = GrantError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let bad = || GrantError::BadDirSyntax(spec.to_owned());
        let (host, guest) = spec.split_once("::").ok_or_else(bad)?;
        let (guest, read_only) = match guest.rsplit_once(':') {
            Some((path, "ro")) => (path, true),
            Some((path, "rw")) => (path, false),
            _ => (guest, false),
        };
        if host.is_empty() || guest.is_empty() {
            return Err(bad());
        }
        Ok(Self {
            host: PathBuf::from(host),
            guest: guest.to_owned(),
            read_only,
        })
    }
}

/// Parses `KEY=VALUE`.
pub fn parse_env(spec: &str) -> Result<(String, String), GrantError> {
    match spec.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(GrantError::BadEnvSyntax(spec.to_owned())),
    }
}

/// Everything a guest is given.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Grants {
    /// `argv`, including `argv[0]`.
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub dirs: Vec<DirGrant>,
    /// What the guest may reach on the network (components only; core
    /// modules have no socket API). Checked where the socket lives.
    pub network: crate::host::network::NetworkRules,
    /// Where the component's `wasi:http/incoming-handler` is served
    /// (`[http]` of its deployment); `None`: it is run through
    /// `wasi:cli/run` (or `_start`).
    pub http: Option<crate::host::http::ServeGrant>,
    /// The topic filters of `[capabilities.messaging] subscribe`: non-empty,
    /// the component's `wasi:messaging/incoming-handler` is served with the
    /// messages the daemon's bus delivers (a worker learns from this that
    /// it must serve them; the daemon matches the filters).
    #[serde(default)]
    pub subscribe: Vec<String>,
}

impl Grants {
    /// Whether the guest needs sockets: network rules, or a listener for
    /// its incoming HTTP requests.
    pub fn needs_network(&self) -> bool {
        self.network.any() || self.http.is_some()
    }
}

impl Grants {
    /// A WASI context builder holding exactly these grants. Output goes
    /// to `capture` (stdout, stderr) or, without it, to the process's own
    /// stdio (stdin too). Network refusals are reported to `services`.
    pub fn wasi_builder(
        &self,
        capture: Option<(LogSink, LogSink)>,
        services: &crate::host::HostServices,
    ) -> Result<WasiCtxBuilder, GrantError> {
        let mut builder = WasiCtxBuilder::new();
        match capture {
            Some((stdout, stderr)) => {
                builder.stdout(stdout).stderr(stderr);
            }
            None => {
                builder.inherit_stdio();
            }
        }
        builder.args(&self.args);
        for (key, value) in &self.env {
            builder.env(key, value);
        }
        for dir in &self.dirs {
            let perms = if dir.read_only {
                FsPerms::ReadOnly
            } else {
                FsPerms::ReadWrite
            };
            builder
                .preopened_dir(&dir.host, &dir.guest, perms)
                .map_err(|e| GrantError::DirUnavailable {
                    host: dir.host.display().to_string(),
                    reason: format!("{e:#}"),
                })?;
        }
        // Without network rules, socket creation itself is refused, not
        // only connects (a worker without them has no `socket` system call).
        crate::host::network::check::apply(&mut builder, &self.network, services);
        // `allow_blocking_current_thread` stays off: with it, a p1 guest's
        // sleep becomes a blocking `std::thread::sleep` that no timeout can
        // interrupt (and the executor thread would stall with it).
        Ok(builder)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dir_grants_parse() {
        let g: DirGrant = "./data::/data:ro".parse().unwrap();
        assert_eq!(
            (g.host.to_str().unwrap(), g.guest.as_str(), g.read_only),
            ("./data", "/data", true)
        );
        let g: DirGrant = "/tmp/x::/".parse().unwrap();
        assert_eq!((g.guest.as_str(), g.read_only), ("/", false));
        let g: DirGrant = "a::b:rw".parse().unwrap();
        assert!(!g.read_only);
        for bad in ["", "::", "a", "a:b", "::b", "a::"] {
            assert!(bad.parse::<DirGrant>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn env_grants_parse() {
        assert_eq!(parse_env("A=b=c").unwrap(), ("A".into(), "b=c".into()));
        assert_eq!(parse_env("A=").unwrap(), ("A".into(), String::new()));
        assert!(parse_env("=x").is_err());
        assert!(parse_env("novalue").is_err());
    }
}
