//! The `arcella` binary: argument parsing and wiring, nothing else.

mod cli;
mod cmd;
mod exit;
mod logging;
mod output;
mod parse;
mod progress;

use cli::{Cli, Command};
use exit::Failure;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match parse::parse() {
        Ok(cli) => cli,
        Err(err) => return usage_error(err),
    };
    match dispatch(&cli) {
        Ok(code) => code,
        Err(failure) => failure.report(cli.json),
    }
}

/// Runs the verb; errors come back as one [`Failure`] to report.
fn dispatch(cli: &Cli) -> Result<ExitCode, Failure> {
    check_early_flags(cli)?;
    let json = cli.json;
    match &cli.command {
        #[cfg(feature = "compiler")]
        Command::Compile(args) => cmd::compile::execute(args, json)?,
        Command::Run(args) => return cmd::run::execute(args),
        Command::Inspect(args) if args.target.is_file() => cmd::inspect::execute(args, json)?,
        Command::Daemon(args) => cmd::daemon::execute(args, cli.before_verb.socket.clone(), json)?,
        Command::Keygen(args) => cmd::keys::keygen(args, json)?,
        Command::Sign(args) => cmd::keys::sign(args, json)?,
        #[cfg(feature = "mqtt")]
        Command::Fleet(args) => cmd::fleet::execute(args, json)?,
        Command::Completions(args) => cmd::docs::completions(args.shell),
        Command::GenerateDocs(args) => cmd::docs::generate(&args.dir)?,
        Command::Wit(args) => cmd::wit::write(&args.out, json)?,
        #[cfg(feature = "compiler")]
        Command::New(args) => cmd::new::execute(args, json)?,
        Command::Kv(args) => {
            let connect = args.connect.merged(&cli.before_verb);
            cmd::kv::execute(args, &cmd::manage::Via::from_args(&connect), json)?
        }
        verb => {
            let connect = verb.connect().cloned().unwrap_or_default().merged(&cli.before_verb);
            cmd::manage::execute(verb, &cmd::manage::Via::from_args(&connect), json)?
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `--socket`, `--broker`, `--device`, `--key` before the verb are only
/// for the verbs that talk to a daemon (and `--socket` for `daemon`).
fn check_early_flags(cli: &Cli) -> Result<(), Failure> {
    let Some(flag) = cli.before_verb.first_given() else {
        return Ok(());
    };
    let used = cli.command.connect().is_some() || (matches!(cli.command, Command::Daemon(_)) && flag == "--socket");
    if used {
        return Ok(());
    }
    Err(Failure::with_code(
        exit::USAGE,
        "usage",
        format!("{flag} is for the verbs that manage a daemon (install, list, status, …); this verb does not use it"),
    ))
}

/// clap's verdict on the arguments: help and `--version` as clap prints
/// them; an error as clap prints it, or with `--json` as a JSON error.
fn usage_error(err: clap::Error) -> ExitCode {
    if !err.use_stderr() || !wants_json() {
        err.exit();
    }
    let text = err.render().to_string();
    let message = text.trim().trim_start_matches("error: ").trim();
    Failure::with_code(exit::USAGE, "usage", message).report(true)
}

/// Whether `--json` is among the arguments (before any `--`), for errors
/// found before they are parsed.
fn wants_json() -> bool {
    std::env::args_os()
        .skip(1)
        .take_while(|a| a != "--")
        .any(|a| a == "--json")
}
