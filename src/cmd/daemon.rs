//! `arcella daemon [--config FILE] [--data-dir DIR] [--socket PATH]`

use crate::cli::DaemonArgs;
use arcella_core::daemon::config::{ConfigError, DaemonConfig};
use arcella_core::daemon::paths::Defaults;
use arcella_core::daemon::{self, DaemonError};
use std::path::PathBuf;

/// Why the daemon did not run.
#[derive(Debug, thiserror::Error)]
pub enum DaemonCmdError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Daemon(#[from] DaemonError),
}

pub fn execute(args: &DaemonArgs, socket: Option<PathBuf>) -> Result<(), DaemonCmdError> {
    let mut config = match &args.config {
        Some(file) => DaemonConfig::load(file, true)?,
        None => DaemonConfig::load(&Defaults::for_this_user().config, false)?,
    };
    if let Some(dir) = &args.data_dir {
        config.data_dir = dir.clone();
    }
    if let Some(socket) = socket {
        config.socket = socket;
    }
    config.validate("the command line")?;
    crate::logging::init(&config.log_level);
    daemon::run(config)?;
    Ok(())
}
