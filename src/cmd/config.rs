//! `arcella config MODULE [get KEY | set KEY=VALUE... | unset KEY...]`:
//! a module's runtime configuration (`wasi:config`), over the socket or
//! MQTT like every management verb (docs/cli.md).

use crate::cli::ConnectArgs;
use crate::cmd::manage::{Link, ManageError};
use crate::cmd::render;
use crate::output::outln;
use arcella_core::protocol::{ConfigSource, ModuleConfig, Request, Response};
use serde::Serialize;

#[derive(Debug, clap::Args)]
pub struct ConfigArgs {
    /// The module's id.
    pub module: String,
    #[command(subcommand)]
    pub action: Option<ConfigAction>,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, clap::Subcommand)]
pub enum ConfigAction {
    /// Print one key's value.
    Get { key: String },
    /// Set operator values, all or none; they layer over the deployment's
    /// `[config]` and survive updates and daemon restarts.
    Set {
        #[arg(required = true, value_name = "KEY=VALUE")]
        pairs: Vec<String>,
    },
    /// Remove operator values: each key returns to the deployment's value
    /// (or is absent).
    Unset {
        #[arg(required = true, value_name = "KEY")]
        keys: Vec<String>,
    },
}

/// Runs the verb on an open link.
pub(crate) fn execute(link: &mut Link, args: &ConfigArgs, json: bool) -> Result<(), ManageError> {
    let module = args.module.clone();
    let request = match &args.action {
        None => Request::GetConfig { module, key: None },
        Some(ConfigAction::Get { key }) => Request::GetConfig {
            module,
            key: Some(key.clone()),
        },
        Some(ConfigAction::Set { pairs }) => Request::SetConfig {
            module,
            set: pairs.iter().map(|p| split(p)).collect::<Result<_, _>>()?,
            unset: Vec::new(),
        },
        Some(ConfigAction::Unset { keys }) => Request::SetConfig {
            module,
            set: Vec::new(),
            unset: keys.clone(),
        },
    };
    let response = link.call(request)?;
    let Response::Config(config) = response else {
        render::response(&response, json);
        return Ok(());
    };
    match (&args.action, json) {
        (Some(ConfigAction::Get { .. }), true) => {
            let entry = config.entries.first();
            render::json_value(&Value {
                module: &config.module,
                key: entry.map(|e| e.key.as_str()),
                value: entry.map(|e| e.value.as_str()),
                source: entry.map(|e| source(e.source)),
            });
        }
        (Some(ConfigAction::Get { .. }), false) => {
            if let Some(entry) = config.entries.first() {
                outln!("{}", entry.value);
            }
        }
        (_, true) => render::json_value(&Listing::from(&config)),
        (_, false) => {
            if config.restarted {
                outln!("{} restarted: its configuration changed", config.module);
            }
            if config.entries.is_empty() {
                outln!("{} has no configuration", config.module);
            }
            for entry in &config.entries {
                outln!("{}={}  ({})", entry.key, entry.value, source(entry.source));
            }
        }
    }
    Ok(())
}

/// `KEY=VALUE` split at its first `=`.
fn split(pair: &str) -> Result<(String, String), ManageError> {
    match pair.split_once('=') {
        Some((key, value)) => Ok((key.to_owned(), value.to_owned())),
        None => Err(ManageError::Usage(format!(
            "`{pair}` is not KEY=VALUE; write it as `{pair}=VALUE` (an empty value: `{pair}=`)"
        ))),
    }
}

fn source(source: ConfigSource) -> &'static str {
    match source {
        ConfigSource::Deployment => "deployment",
        ConfigSource::Operator => "operator",
    }
}

/// `config MODULE [set|unset] --json`: `{"module", "restarted", "config": [{key, value, source}]}`.
#[derive(Debug, Serialize)]
struct Listing<'a> {
    module: &'a str,
    restarted: bool,
    config: Vec<Entry<'a>>,
}

/// One key of a [`Listing`].
#[derive(Debug, Serialize)]
struct Entry<'a> {
    key: &'a str,
    value: &'a str,
    /// deployment or operator.
    source: &'static str,
}

/// `config MODULE get KEY --json`.
#[derive(Debug, Serialize)]
struct Value<'a> {
    module: &'a str,
    key: Option<&'a str>,
    value: Option<&'a str>,
    /// deployment or operator.
    source: Option<&'static str>,
}

impl<'a> From<&'a ModuleConfig> for Listing<'a> {
    fn from(config: &'a ModuleConfig) -> Self {
        Self {
            module: &config.module,
            restarted: config.restarted,
            config: config
                .entries
                .iter()
                .map(|e| Entry {
                    key: &e.key,
                    value: &e.value,
                    source: source(e.source),
                })
                .collect(),
        }
    }
}
