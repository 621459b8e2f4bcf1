//! The `arcella` binary: argument parsing and wiring, nothing else.

mod cli;
mod cmd;
mod exit;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli.command {
        #[cfg(feature = "compiler")]
        cli::Command::Compile(args) => report(cmd::compile::execute(&args)),
        cli::Command::Run(args) => cmd::run::execute(&args),
        cli::Command::Inspect(args) => report(cmd::inspect::execute(&args)),
    }
}

/// Prints an error the one way every command prints errors.
fn report(result: Result<(), cmd::CmdError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(exit::FAILURE)
        }
    }
}
