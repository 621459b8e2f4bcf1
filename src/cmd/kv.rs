//! `arcella kv MODULE [--bucket NAME] list|get|set|delete|export|import`:
//! an operator's access to a module's key-value state, through the daemon
//! (which may be serving the running module at the same time).
//!
//! Values are bytes. On the command line and in export files a value that
//! is valid UTF-8 is written as text; any other is `hex:` and hex digits
//! (`get`, `set`), or the `hex` field of its JSON line (`export`, `import`).

use super::manage::{Link, Via};
use super::render::json_value;
use crate::cli::{KvArgs, KvVerb};
use crate::exit::Failure;
use crate::output::outln;
use arcella_core::digest::{hex, parse_hex_bytes};
use arcella_core::protocol::kv::KV_PAGE_BYTES;
use arcella_core::protocol::{KvAnswer, KvOp, Request, Response};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, Write};
use std::path::Path;

/// One line of an export file.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hex: Option<String>,
}

impl Line {
    fn of(key: String, value: Vec<u8>) -> Self {
        match String::from_utf8(value) {
            Ok(text) => Self {
                key,
                value: Some(text),
                hex: None,
            },
            Err(e) => Self {
                key,
                value: None,
                hex: Some(hex(e.as_bytes())),
            },
        }
    }

    fn bytes(self, at: &str) -> Result<(String, Vec<u8>), Failure> {
        let value = match (self.value, self.hex) {
            (Some(text), None) => text.into_bytes(),
            (None, Some(digits)) => parse_hex_bytes(&digits)
                .ok_or_else(|| invalid(format!("{at}: \"hex\" is not an even number of hex digits")))?,
            _ => {
                return Err(invalid(format!(
                    "{at}: give exactly one of \"value\" (text) and \"hex\""
                )));
            }
        };
        Ok((self.key, value))
    }
}

/// `get`'s answer with `--json`.
#[derive(Debug, Serialize)]
struct Got<'a> {
    key: &'a str,
    #[serde(flatten)]
    value: Line,
}

/// The answer of `set`, `delete`, `import` with `--json`.
#[derive(Debug, Serialize)]
struct Changed<'a> {
    module: &'a str,
    bucket: &'a str,
    verb: &'a str,
    count: u32,
}

fn invalid(message: String) -> Failure {
    Failure::new("invalid_input", message)
}

/// Runs one `kv` verb.
pub fn execute(args: &KvArgs, via: &Via, json: bool) -> Result<(), Failure> {
    let mut link = Link::open(via)?;
    let mut ask = |op: KvOp| -> Result<KvAnswer, Failure> {
        let request = Request::Kv {
            module: args.module.clone(),
            bucket: args.bucket.clone(),
            op,
        };
        match link.call(request)? {
            Response::Kv(answer) => Ok(answer),
            other => Err(Failure::new("connection", format!("the daemon answered {other:?}"))),
        }
    };
    match &args.verb {
        KvVerb::List => {
            let mut after = None;
            let mut all = Vec::new();
            loop {
                let KvAnswer::Keys { keys, more } = ask(KvOp::List { after: after.clone() })? else {
                    return Err(odd());
                };
                after = keys.last().cloned();
                if !json {
                    keys.iter().for_each(|k| outln!("{k}"));
                }
                all.extend(keys);
                if !more || after.is_none() {
                    break;
                }
            }
            if json {
                json_value(&all);
            }
        }
        KvVerb::Get { key } => {
            let KvAnswer::Value(value) = ask(KvOp::Get { key: key.clone() })? else {
                return Err(odd());
            };
            let Some(value) = value else {
                return Err(Failure::new(
                    "not_found",
                    format!(
                        "no key {key:?} in bucket {:?} of module `{}` (see `arcella kv {} list`)",
                        args.bucket, args.module, args.module
                    ),
                ));
            };
            let line = Line::of(key.clone(), value);
            if json {
                json_value(&Got { key, value: line });
            } else if let Some(text) = line.value {
                outln!("{text}");
            } else {
                outln!("hex:{}", line.hex.unwrap_or_default());
            }
        }
        KvVerb::Set { key, value } => {
            let value = match value.strip_prefix("hex:") {
                Some(digits) => parse_hex_bytes(digits)
                    .ok_or_else(|| invalid(format!("{value:?}: after \"hex:\" give an even number of hex digits")))?,
                None => value.clone().into_bytes(),
            };
            ask(KvOp::Set {
                key: key.clone(),
                value,
            })?;
            report(args, json, "set", 1, &format!("set {key:?}"));
        }
        KvVerb::Delete { key } => {
            ask(KvOp::Delete { key: key.clone() })?;
            report(args, json, "delete", 1, &format!("deleted {key:?}"));
        }
        KvVerb::Export { file } => export(&mut ask, file.as_deref())?,
        KvVerb::Import { file } => {
            let count = import(&mut ask, file)?;
            report(args, json, "import", count, &format!("imported {count} entries"));
        }
    }
    Ok(())
}

fn odd() -> Failure {
    Failure::new("connection", "the daemon answered another kind of key-value answer")
}

fn report(args: &KvArgs, json: bool, verb: &str, count: u32, text: &str) {
    if json {
        json_value(&Changed {
            module: &args.module,
            bucket: &args.bucket,
            verb,
            count,
        });
    } else {
        outln!("{}: {text}", args.module);
    }
}

fn export(ask: &mut impl FnMut(KvOp) -> Result<KvAnswer, Failure>, file: Option<&Path>) -> Result<(), Failure> {
    let io = |e: std::io::Error| {
        Failure::new(
            "io",
            format!("{}: {e}", file.map_or("stdout".into(), |p| p.display().to_string())),
        )
    };
    let mut out: Box<dyn Write> = match file {
        Some(path) => Box::new(std::io::BufWriter::new(std::fs::File::create(path).map_err(io)?)),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut after = None;
    loop {
        let KvAnswer::Entries { entries, more } = ask(KvOp::Export { after: after.clone() })? else {
            return Err(odd());
        };
        after = entries.last().map(|(k, _)| k.clone());
        for (key, value) in entries {
            let text = serde_json::to_string(&Line::of(key, value)).map_err(|e| Failure::new("internal", e))?;
            writeln!(out, "{text}").map_err(io)?;
        }
        if !more || after.is_none() {
            break;
        }
    }
    out.flush().map_err(io)
}

/// Sends the file's entries in batches of at most [`KV_PAGE_BYTES`]; each
/// batch is one transaction. Every line is parsed before anything is sent,
/// so a bad file changes nothing.
fn import(ask: &mut impl FnMut(KvOp) -> Result<KvAnswer, Failure>, file: &Path) -> Result<u32, Failure> {
    let name = file.display().to_string();
    let reader = std::fs::File::open(file).map_err(|e| Failure::new("io", format!("{name}: {e}")))?;
    let mut entries = Vec::new();
    for (i, line) in std::io::BufReader::new(reader).lines().enumerate() {
        let line = line.map_err(|e| Failure::new("io", format!("{name}: {e}")))?;
        if line.trim().is_empty() {
            continue;
        }
        let at = format!("{name}:{}", i + 1);
        let parsed: Line = serde_json::from_str(&line).map_err(|e| {
            invalid(format!(
                "{at}: {e}; each line is {{\"key\": K, \"value\": TEXT}} or {{\"key\": K, \"hex\": DIGITS}}"
            ))
        })?;
        entries.push(parsed.bytes(&at)?);
    }
    let mut count = 0u32;
    let mut batch = Vec::new();
    let mut size = 0usize;
    for (key, value) in entries {
        size += key.len() + value.len() + 8;
        batch.push((key, value));
        if size >= KV_PAGE_BYTES {
            count += sent(ask(KvOp::Import {
                entries: std::mem::take(&mut batch),
            })?)?;
            size = 0;
        }
    }
    if !batch.is_empty() || count == 0 {
        count += sent(ask(KvOp::Import { entries: batch })?)?;
    }
    Ok(count)
}

fn sent(answer: KvAnswer) -> Result<u32, Failure> {
    match answer {
        KvAnswer::Done { count } => Ok(count),
        _ => Err(odd()),
    }
}
