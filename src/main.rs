//! The `arcella` binary: argument parsing and wiring, nothing else.

mod cli;
mod cmd;
mod exit;
mod logging;

use clap::Parser;
use cli::Command;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match &cli.command {
        #[cfg(feature = "compiler")]
        Command::Compile(args) => report(cmd::compile::execute(args)),
        Command::Run(args) => cmd::run::execute(args),
        Command::Inspect(args) if args.target.is_file() => report(cmd::inspect::execute(args, cli.json)),
        Command::Daemon(args) => report(cmd::daemon::execute(args, cli.socket.clone())),
        Command::Keygen(args) => report(cmd::keys::keygen(args)),
        Command::Sign(args) => report(cmd::keys::sign(args)),
        Command::Fleet(args) => fleet_exit(cmd::fleet::execute(args)),
        verb => report(cmd::manage::execute(verb, &cmd::manage::Via::from_cli(&cli), cli.json)),
    }
}

/// `fleet` says "not converged" with its own exit code.
fn fleet_exit(result: Result<(), cmd::fleet::FleetError>) -> ExitCode {
    match result {
        Err(cmd::fleet::FleetError::NotConverged) => {
            eprintln!("error: {}", cmd::fleet::FleetError::NotConverged);
            ExitCode::from(exit::NOT_CONVERGED)
        }
        other => report(other),
    }
}

/// Prints an error the one way every command prints errors.
fn report<E: std::fmt::Display>(result: Result<(), E>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(exit::FAILURE)
        }
    }
}
