//! The command line, parsed: `arcella run` on its own, everything else
//! (and anything `run` alone does not accept) by the whole CLI.
//!
//! Building the whole CLI, every verb's arguments with their help, is an
//! eighth of a `arcella run hello.cwasm` (a device build's profile), and a
//! run needs only its own. A run's arguments are parsed by [`RunOnly`], the
//! same [`RunArgs`] and the global `--json`; help, `--version` and every
//! mistake go to the whole CLI, so users see the same messages as before.

use crate::cli::{Cli, Command, EarlyConnectArgs, RunArgs};
use clap::Parser;
use std::ffi::OsString;

/// `arcella run`'s arguments alone.
#[derive(Debug, Parser)]
#[command(name = "arcella run")]
struct RunOnly {
    /// As the whole CLI's global `--json`.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    args: RunArgs,
}

/// The process's arguments, parsed.
pub fn parse() -> Result<Cli, clap::Error> {
    parse_from(std::env::args_os().collect())
}

fn parse_from(argv: Vec<OsString>) -> Result<Cli, clap::Error> {
    run_alone(&argv).map_or_else(|| Cli::try_parse_from(argv), Ok)
}

/// `argv` parsed as a run, if it is one (`arcella run …`) that [`RunOnly`]
/// accepts.
fn run_alone(argv: &[OsString]) -> Option<Cli> {
    if argv.get(1).is_none_or(|verb| verb != "run") {
        return None;
    }
    // `run` stands where clap expects the program's name.
    let run = RunOnly::try_parse_from(&argv[1..]).ok()?;
    Some(Cli {
        json: run.json,
        before_verb: EarlyConnectArgs::default(),
        command: Command::Run(run.args),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(args: &[&str]) -> Vec<OsString> {
        std::iter::once("arcella")
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect()
    }

    /// Both parsers' verdicts on `args`, as Debug text.
    fn both(args: &[&str]) -> (Option<String>, String) {
        let alone = run_alone(&argv(args)).map(|cli| format!("{cli:?}"));
        let whole = Cli::try_parse_from(argv(args)).map_or_else(|e| format!("error: {e}"), |cli| format!("{cli:?}"));
        (alone, whole)
    }

    #[test]
    fn a_run_parses_alone_as_the_whole_cli_parses_it() {
        for args in [
            &["run", "hello.cwasm"][..],
            &["run", "--json", "hello.cwasm"],
            &["run", "hello.cwasm", "--json"],
            &[
                "run",
                "--fuel",
                "1000",
                "--timeout",
                "2s",
                "--max-memory",
                "1M",
                "h.cwasm",
            ],
            &[
                "run",
                "--env",
                "A=b",
                "--dir",
                "/tmp::/data:ro",
                "h.cwasm",
                "--",
                "--json",
                "x",
            ],
            &["run", "--connect", "127.0.0.1:80", "--lookup", "h.cwasm"],
        ] {
            let (alone, whole) = both(args);
            assert_eq!(alone.as_deref(), Some(whole.as_str()), "{args:?}");
        }
    }

    #[test]
    fn what_a_run_alone_does_not_accept_goes_to_the_whole_cli() {
        for args in [
            &["run"][..],
            &["run", "--help"],
            &["run", "--version"],
            &["run", "--fuel", "lots", "h.cwasm"],
            &["run", "--no-such-flag", "h.cwasm"],
            &["run", "h.cwasm", "arg", "--", "--fuel"],
            &["--json", "run", "h.cwasm"],
            &["--socket", "/tmp/s", "run", "h.cwasm"],
            &["list"],
            &[],
        ] {
            let (alone, _) = both(args);
            assert_eq!(alone, None, "{args:?}");
        }
        // And the whole CLI's verdict is what the user gets.
        let err = parse_from(argv(&["run", "--fuel", "lots", "h.cwasm"])).unwrap_err();
        assert!(err.to_string().contains("--fuel"), "{err}");
        let err = parse_from(argv(&["run", "--version"])).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::DisplayVersion);
        assert!(err.to_string().contains(env!("CARGO_PKG_VERSION")), "{err}");
        assert!(matches!(
            parse_from(argv(&["--json", "run", "h.cwasm"])).map(|cli| cli.json),
            Ok(true)
        ));
    }
}
