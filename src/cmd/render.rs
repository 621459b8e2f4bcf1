//! How responses look: short human text by default, JSON with `--json`.

use super::json;
use crate::output::outln;
use arcella_core::protocol::{LogLine, LogStream, ModuleKind, ModuleState, ModuleSummary, Response};
use serde::Serialize;

/// Prints a response as its JSON object (docs/cli.md).
fn response_json(response: &Response) {
    match response {
        Response::Info(info) => json_value(&json::Info::from(info)),
        Response::Modules(modules) => json_value(&modules.iter().map(json::Module::from).collect::<Vec<_>>()),
        Response::Status(status) => json_value(&json::Status::from(status.as_ref())),
        Response::Inspect(i) => json_value(&json::Installed::from(i)),
        Response::Logs(lines) => lines.iter().for_each(|l| json_value(&json::Event::from(l))),
        Response::Module(m) => json_value(&json::Module::from(m)),
        Response::Removed { module } => json_value(&json::Removed {
            id: module.clone(),
            removed: true,
        }),
        Response::Collected(c) => json_value(&json::Collected {
            artifacts: c.artifacts.clone(),
            uploads: c.uploads,
            bytes: c.bytes,
        }),
        Response::Audit(records) => records.iter().for_each(json_value),
        // Steps inside a verb, never its answer (`config` prints its own).
        Response::Uploaded { .. } | Response::Following | Response::Unfollowed | Response::Config(_) => {}
        // `arcella kv` prints its own answers (cmd/kv.rs).
        Response::Kv(_) => {}
        Response::Wiring(w) => json_value(&json::Wiring::from(w)),
        Response::Telemetry(t) => json_value(&json::Telemetry::from(t)),
    }
}

/// Prints a response.
pub fn response(response: &Response, json: bool) {
    if json {
        response_json(response);
        return;
    }
    match response {
        Response::Info(info) => {
            outln!("arcella {} (protocol {})", info.version, info.protocol);
            outln!("board:       {}", info.board);
            outln!("engine:      {}", info.fingerprint);
            outln!("data dir:    {}", info.data_dir);
            outln!("uptime:      {}s", info.uptime_secs);
            outln!("modules:     {}", info.modules);
            for (i, line) in provided_packages(&info.interfaces).iter().enumerate() {
                let label = if i == 0 { "provides:" } else { "" };
                outln!("{label:<12} {line}");
            }
        }
        Response::Wiring(w) => wiring(w),
        Response::Telemetry(t) => telemetry(t),
        Response::Modules(modules) if modules.is_empty() => outln!("no modules installed"),
        Response::Modules(modules) => {
            outln!("{:<24} {:<12} {:<8} {:<7} STATE", "MODULE", "VERSION", "KIND", "WHERE");
            for m in modules {
                summary_row(m);
            }
        }
        Response::Status(status) => {
            let s = &status.summary;
            outln!("module:      {} {}", s.id, s.version);
            match (&s.state, s.kind) {
                // A command that ran to its end is done, whatever it was
                // desired to be.
                (ModuleState::Exited { .. }, ModuleKind::Command) => outln!("state:       {}", shown_state(s)),
                _ => outln!("state:       {} (desired: {})", shown_state(s), lower(&status.desired)),
            }
            outln!("kind:        {}, isolation {}", lower(&s.kind), lower(&s.isolation));
            if let Some(worker) = &status.worker {
                outln!(
                    "worker:      group {}, pid {}, {} KiB resident",
                    worker.group,
                    worker.pid,
                    worker.resident_bytes / 1024
                );
            }
            outln!("artifact:    sha256:{}", status.artifact);
            if let Some(previous) = &status.previous_version {
                outln!("previous:    {previous}");
            }
            if let Some(update) = &status.last_update {
                outln!("last update: {}", update_line(update));
            }
            outln!("restarts:    {}", status.restarts);
            if let Some(m) = &status.messaging {
                outln!(
                    "messages:    published {}, denied {}; received {}, handled {} ({} failed), dropped {}, \
                     queued {}/{}",
                    m.published,
                    m.denied,
                    m.received,
                    m.handled,
                    m.failed,
                    m.dropped,
                    m.queued,
                    m.capacity
                );
            }
            if let Some(code) = status.last_exit {
                outln!("last exit:   {code}");
            }
            if let Some(error) = &status.last_error {
                outln!("last error:  {error}");
            }
        }
        Response::Inspect(i) => {
            outln!("module:      {}", i.id);
            outln!("kind:        {}", i.artifact_kind);
            outln!("fingerprint: {}", i.fingerprint);
            outln!("code:        sha256:{}", i.code_sha256);
            outln!("source:      sha256:{}", i.source_sha256);
            outln!("exports:     {}", i.exports.join(", "));
            outln!("imports:     {}", i.imports.join(", "));
        }
        Response::Logs(lines) => lines.iter().for_each(log_line),
        Response::Uploaded { received, complete } => {
            outln!("uploaded {received} bytes{}", if *complete { ", verified" } else { "" })
        }
        Response::Module(m) => outln!("{} {} is {}", m.id, m.version, shown_state(m)),
        Response::Removed { module } => outln!("{module} removed"),
        Response::Following | Response::Unfollowed | Response::Config(_) | Response::Kv(_) => {}
        Response::Audit(records) => super::audit::render(records),
        Response::Collected(c) if c.artifacts.is_empty() && c.uploads == 0 => outln!("nothing to collect"),
        Response::Collected(c) => {
            for artifact in &c.artifacts {
                outln!("removed artifact sha256:{artifact}");
            }
            if c.uploads > 0 {
                outln!("removed {} stale upload(s)", c.uploads);
            }
            outln!("freed {}", arcella_core::units::format_bytes(c.bytes));
        }
    }
}

fn summary_row(m: &ModuleSummary) {
    outln!(
        "{:<24} {:<12} {:<8} {:<7} {}",
        m.id,
        m.version,
        lower(&m.kind),
        lower(&m.isolation),
        shown_state(m)
    );
}

/// A module's state in words; a command that exited has finished.
fn shown_state(m: &ModuleSummary) -> String {
    match (&m.state, m.kind) {
        (ModuleState::Exited { code }, ModuleKind::Command) => format!("finished (exit code {code})"),
        (other, _) => state(other),
    }
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
        ModuleState::Waiting { reason } => format!("waiting: {reason}"),
    }
}

/// One captured line: `stream | text`.
pub fn log_line(line: &LogLine) {
    let stream = match line.stream {
        LogStream::Stdout => "out",
        LogStream::Stderr => "err",
        LogStream::Daemon => "arcella",
        LogStream::Logging(level) => level.word(),
    };
    outln!("{stream:>7} | {}", line.text);
}

/// One JSON document per line.
pub fn json_value<T: Serialize>(value: &T) {
    match serde_json::to_string(value) {
        Ok(text) => outln!("{text}"),
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

/// `in its health window for 28s more: …` while the last update is on
/// probation, else nothing.
pub fn health_window_note(status: &arcella_core::protocol::ModuleStatus) -> Option<String> {
    use arcella_core::protocol::UpdateOutcome;
    let update = status.last_update.as_ref()?;
    let UpdateOutcome::Probation { until } = update.outcome else {
        return None;
    };
    let left = until.saturating_sub(unix_now());
    Some(format!(
        "{} {} is in its health window for {left}s more: if it fails before then, {} comes back; \
         `arcella status {}` tells whether it held",
        status.summary.id, update.to, update.from, status.summary.id
    ))
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `wasi:cli/stdout@0.2.12`, … grouped as `wasi:cli@0.2.12: stdout, …`,
/// one line per package and version, in the daemon's order.
fn provided_packages(interfaces: &[String]) -> Vec<String> {
    let mut packages: Vec<(String, Vec<&str>)> = Vec::new();
    for name in interfaces {
        let (path, version) = name.split_once('@').unwrap_or((name, ""));
        let (package, interface) = path.split_once('/').unwrap_or((path, ""));
        let key = format!("{package}@{version}");
        match packages.iter_mut().find(|(k, _)| *k == key) {
            Some((_, list)) => list.push(interface),
            None => packages.push((key, vec![interface])),
        }
    }
    packages
        .into_iter()
        .map(|(key, list)| format!("{key}: {}", list.join(", ")))
        .collect()
}

/// `arcella wiring` as text: providers, then links, then who waits.
fn wiring(w: &arcella_core::protocol::Wiring) {
    if w.providers.is_empty() && w.links.is_empty() && w.waiting.is_empty() {
        outln!("no providers running and no module imports one");
        return;
    }
    outln!("{:<20} {:<10} {:<18} PROVIDES", "PROVIDER", "VERSION", "PROCESS");
    for p in &w.providers {
        outln!(
            "{:<20} {:<10} {:<18} {}",
            p.module,
            p.version,
            p.process,
            p.exports.join(", ")
        );
    }
    if !w.links.is_empty() {
        outln!();
        outln!("{:<20} {:<18} {:<36} PROVIDER", "CONSUMER", "PROCESS", "IMPORT");
        for l in &w.links {
            outln!("{:<20} {:<18} {:<36} {}", l.consumer, l.process, l.import, l.provider);
        }
    }
    for (module, why) in &w.waiting {
        outln!();
        outln!("{module} waits: {why}");
    }
}

/// `arcella telemetry` as text: the device, its workers, then a row per
/// module (`-` where a figure is not known: not running, or its worker
/// did not answer in time).
fn telemetry(t: &arcella_core::protocol::telemetry::Telemetry) {
    use arcella_core::units::format_bytes;
    outln!("uptime:      {}s", t.uptime_secs);
    outln!(
        "memory:      {} free of {}",
        format_bytes(t.free_memory),
        format_bytes(t.total_memory)
    );
    outln!("disk:        {} free", format_bytes(t.free_disk));
    outln!("daemon:      {} resident", format_bytes(t.daemon_resident));
    for w in &t.workers {
        outln!(
            "worker:      group {}, pid {}, {} resident",
            w.group,
            w.pid,
            format_bytes(w.resident)
        );
    }
    if t.modules.is_empty() {
        outln!("no modules installed");
        return;
    }
    outln!();
    outln!(
        "{:<24} {:<7} {:>10} {:>10} {:>8}  STATE",
        "MODULE",
        "WHERE",
        "MEMORY",
        "CPU",
        "RESTARTS"
    );
    for m in &t.modules {
        outln!(
            "{:<24} {:<7} {:>10} {:>10} {:>8}  {}",
            m.id,
            lower(&m.isolation),
            m.memory.map_or_else(|| "-".to_owned(), format_bytes),
            m.cpu_ms.map_or_else(|| "-".to_owned(), cpu_time),
            m.restarts,
            state(&m.state)
        );
    }
}

/// CPU time as people read it: `850 ms`, `12.3 s`, `2 h 5 min`.
fn cpu_time(ms: u64) -> String {
    match ms {
        0..10_000 => format!("{ms} ms"),
        10_000..3_600_000 => format!("{:.1} s", ms as f64 / 1000.0),
        _ => format!("{} h {} min", ms / 3_600_000, ms % 3_600_000 / 60_000),
    }
}
