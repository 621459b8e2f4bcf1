//! Command-line interface definition.

use arcella_core::ArtifactTarget;
use arcella_core::run::DirGrant;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

/// Arcella: a WebAssembly runtime for constrained Linux devices.
#[derive(Debug, Parser)]
#[command(name = "arcella", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Compile a .wasm (or .wat) module or component into an artifact.
    #[cfg(feature = "compiler")]
    Compile(CompileArgs),
    /// Run a WASI command: a preview-1 module or a wasi:cli/command component.
    Run(RunArgs),
    /// Show what an artifact is: kind, engine fingerprint, digests.
    Inspect(InspectArgs),
}

#[derive(Debug, clap::Args)]
pub struct CompileArgs {
    /// The .wasm or .wat file to compile (module or component, detected).
    pub input: PathBuf,
    /// Where to write the artifact [default: INPUT with extension .cwasm].
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// native, pulley32, pulley64, or a target triple such as
    /// aarch64-unknown-linux-gnu.
    #[arg(long, default_value = "native")]
    pub target: ArtifactTarget,
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// A .cwasm artifact, or (on builds with the compiler) a .wasm/.wat file.
    pub file: PathBuf,
    /// Fuel budget: roughly, wasm instructions the guest may execute.
    #[arg(long, value_name = "N")]
    pub fuel: Option<u64>,
    /// Most bytes of linear memory the guest may hold (suffixes K, M, G).
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    pub max_memory: Option<u64>,
    /// Wall-clock limit, such as 500ms, 10s, 2m.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// Grant a host directory as HOST::GUEST, or HOST::GUEST:ro (repeatable).
    #[arg(long = "dir", value_name = "HOST::GUEST[:ro]")]
    pub dirs: Vec<DirGrant>,
    /// Grant an environment variable as KEY=VALUE (repeatable).
    #[arg(long = "env", value_name = "K=V", value_parser = parse_env)]
    pub env: Vec<(String, String)>,
    /// Arguments passed to the guest.
    #[arg(last = true)]
    pub args: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// The artifact to describe.
    pub file: PathBuf,
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    arcella_core::run::parse_env(s).map_err(|e| e.to_string())
}

/// `4096`, `64K`, `16M`, `1G` (powers of 1024).
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (digits, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, ""),
    };
    let shift = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        _ => return Err(format!("`{s}`: expected a byte count such as 65536, 64K, 16M or 1G")),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{s}`: expected a byte count such as 65536, 64K, 16M or 1G"))?;
    n.checked_mul(1 << shift).ok_or_else(|| format!("`{s}` is too large"))
}

/// `250ms`, `10s`, `2m`, `1h`; a bare number is seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let bad = || format!("`{s}`: expected a duration such as 500ms, 10s or 2m");
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.checked_mul(60).ok_or_else(bad)?),
        "h" => Duration::from_secs(n.checked_mul(3600).ok_or_else(bad)?),
        _ => return Err(bad()),
    };
    if d.is_zero() {
        return Err(format!("`{s}`: a timeout must be longer than zero"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert_eq!(parse_bytes("64K"), Ok(65536));
        assert_eq!(parse_bytes("16m"), Ok(16 << 20));
        assert_eq!(parse_bytes("1GiB"), Ok(1 << 30));
        assert!(parse_bytes("").is_err());
        assert!(parse_bytes("12Q").is_err());
        assert!(parse_bytes("99999999999999G").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5d").is_err());
    }
}
