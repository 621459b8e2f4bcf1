//! How responses look: short human text by default, JSON with `--json`.

use arcella_core::protocol::{LogLine, LogStream, ModuleState, ModuleSummary, Response};
use serde::Serialize;

/// Prints a response.
pub fn response(response: &Response, json: bool) {
    if json {
        json_value(response);
        return;
    }
    match response {
        Response::Info(info) => {
            println!("arcella {} (protocol {})", info.version, info.protocol);
            println!("board:       {}", info.board);
            println!("engine:      {}", info.fingerprint);
            println!("data dir:    {}", info.data_dir);
            println!("uptime:      {}s", info.uptime_secs);
            println!("modules:     {}", info.modules);
        }
        Response::Modules(modules) if modules.is_empty() => println!("no modules installed"),
        Response::Modules(modules) => {
            println!("{:<24} {:<12} {:<8} {:<7} STATE", "MODULE", "VERSION", "KIND", "WHERE");
            for m in modules {
                summary_row(m);
            }
        }
        Response::Status(status) => {
            let s = &status.summary;
            println!("module:      {} {}", s.id, s.version);
            println!("state:       {} (desired: {})", state(&s.state), lower(&status.desired));
            println!("kind:        {}, isolation {}", lower(&s.kind), lower(&s.isolation));
            if let Some(worker) = &status.worker {
                println!(
                    "worker:      group {}, pid {}, {} KiB resident",
                    worker.group,
                    worker.pid,
                    worker.resident_bytes / 1024
                );
            }
            println!("artifact:    sha256:{}", status.artifact);
            if let Some(previous) = &status.previous_version {
                println!("previous:    {previous}");
            }
            if let Some(update) = &status.last_update {
                println!("last update: {}", update_line(update));
            }
            println!("restarts:    {}", status.restarts);
            if let Some(code) = status.last_exit {
                println!("last exit:   {code}");
            }
            if let Some(error) = &status.last_error {
                println!("last error:  {error}");
            }
        }
        Response::Inspect(i) => {
            println!("module:      {}", i.id);
            println!("kind:        {}", i.artifact_kind);
            println!("fingerprint: {}", i.fingerprint);
            println!("code:        sha256:{}", i.code_sha256);
            println!("source:      sha256:{}", i.source_sha256);
            println!("exports:     {}", i.exports.join(", "));
            println!("imports:     {}", i.imports.join(", "));
        }
        Response::Logs(lines) => lines.iter().for_each(log_line),
        Response::Uploaded { received, complete } => {
            println!("uploaded {received} bytes{}", if *complete { ", verified" } else { "" })
        }
        Response::Module(m) => println!("{} {} is {}", m.id, m.version, state(&m.state)),
        Response::Removed { module } => println!("{module} removed"),
        Response::Following | Response::Unfollowed => {}
        Response::Collected(c) if c.artifacts.is_empty() && c.uploads == 0 => println!("nothing to collect"),
        Response::Collected(c) => {
            for artifact in &c.artifacts {
                println!("removed artifact sha256:{artifact}");
            }
            if c.uploads > 0 {
                println!("removed {} stale upload(s)", c.uploads);
            }
            println!("freed {}", arcella_core::units::format_bytes(c.bytes));
        }
    }
}

fn summary_row(m: &ModuleSummary) {
    println!(
        "{:<24} {:<12} {:<8} {:<7} {}",
        m.id,
        m.version,
        lower(&m.kind),
        lower(&m.isolation),
        state(&m.state)
    );
}

/// A unit-variant enum's name in lower case (`Running` → `running`).
fn lower(value: &impl std::fmt::Debug) -> String {
    format!("{value:?}").to_lowercase()
}

/// A state in words.
pub fn state(state: &ModuleState) -> String {
    match state {
        ModuleState::Stopped => "stopped".into(),
        ModuleState::Starting => "starting".into(),
        ModuleState::Running => "running".into(),
        ModuleState::Stopping => "stopping".into(),
        ModuleState::Exited { code } => format!("exited ({code})"),
        ModuleState::BackingOff { attempt, in_ms } => format!("restarting (attempt {attempt} in {in_ms} ms)"),
        ModuleState::Failed { reason } => format!("failed: {reason}"),
    }
}

/// One captured line: `stream | text`.
pub fn log_line(line: &LogLine) {
    let stream = match line.stream {
        LogStream::Stdout => "out",
        LogStream::Stderr => "err",
        LogStream::Daemon => "arcella",
    };
    println!("{stream:>7} | {}", line.text);
}

/// Prints `line` as JSON if `json`; says whether it did.
pub fn json_line(json: bool, line: &LogLine) -> bool {
    if json {
        json_value(line);
    }
    json
}

/// One JSON document per line.
pub fn json_value<T: Serialize>(value: &T) {
    match serde_json::to_string(value) {
        Ok(text) => println!("{text}"),
        Err(e) => eprintln!("error: cannot render JSON: {e}"),
    }
}

/// `1.0.0 -> 1.1.0: rolled back to 1.0.0: …`.
fn update_line(update: &arcella_core::protocol::UpdateReport) -> String {
    use arcella_core::protocol::UpdateOutcome;
    let (from, to) = (&update.from, &update.to);
    match &update.outcome {
        UpdateOutcome::Probation { until } => {
            let left = until.saturating_sub(unix_now());
            format!("{from} -> {to}: in its health window ({left}s left)")
        }
        UpdateOutcome::Succeeded => format!("{from} -> {to}: succeeded"),
        UpdateOutcome::RolledBack { reason } => format!("{from} -> {to}: rolled back to {from}: {reason}"),
        UpdateOutcome::Reverted => format!("rolled back by hand from {from} to {to}"),
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
