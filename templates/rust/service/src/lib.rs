//! {{name}}: a long-running Arcella service. It reads its settings from
//! `wasi:config` (deployment.toml's `[config]`, changed at run time with
//! `arcella config {{name}} set KEY=VALUE`), counts its starts in
//! `wasi:keyvalue` (so the count survives restarts and updates), logs
//! through `wasi:logging` (`arcella logs {{name}}`), and ticks until the
//! daemon asks it to stop (`arcella:service/lifecycle`).
//!
//! Edit `work` below; add imports to wit/world.wit and their grants to
//! deployment.toml.

wit_bindgen::generate!({ path: "wit", world: "{{name}}", generate_all });

use arcella::service::lifecycle::shutdown_requested;
use wasi::config::store as config;
use wasi::keyvalue::{atomics, store};
use wasi::logging::logging::{Level, log};
use std::time::Duration;

/// The log context of every line.
const CONTEXT: &str = "{{name}}";

struct Service;

impl exports::wasi::cli::run::Guest for Service {
    fn run() -> Result<(), ()> {
        let greeting = setting("greeting").unwrap_or_else(|| "hello".to_string());
        log(Level::Info, CONTEXT, &format!("config: greeting = {greeting:?}"));
        // Under `arcella run` no key-value store is granted: the service
        // says so and goes on without its count.
        match count_start() {
            Ok(starts) => log(Level::Info, CONTEXT, &format!("start number {starts}")),
            Err(why) => log(Level::Warn, CONTEXT, &format!("no key-value state, starts not counted: {why}")),
        }
        println!("{greeting} from {{name}}");
        let mut ticks: u64 = 0;
        while !shutdown_requested() {
            // Read at every tick: `arcella config` takes effect at once.
            let interval = setting("interval_ms").and_then(|ms| ms.parse().ok()).unwrap_or(1000);
            if nap(interval) {
                break;
            }
            ticks += 1;
            work(ticks);
        }
        log(Level::Info, CONTEXT, &format!("stopping after {ticks} ticks"));
        Ok(())
    }
}

/// What the service does every `interval_ms`: your code goes here.
fn work(ticks: u64) {
    log(Level::Debug, CONTEXT, &format!("tick {ticks}"));
}

/// A `[config]` value (or the operator's), if set.
fn setting(key: &str) -> Option<String> {
    config::get(key).ok().flatten()
}

/// Adds one to the count of starts kept in the bucket `default`.
fn count_start() -> Result<u64, String> {
    let bucket = store::open("default").map_err(describe)?;
    atomics::increment(&bucket, "starts", 1).map_err(describe)
}

/// Why a key-value call failed, in words.
fn describe(error: store::Error) -> String {
    match error {
        store::Error::AccessDenied => "access denied (grant [capabilities.keyvalue] in deployment.toml)".into(),
        store::Error::NoSuchStore => "no such store".into(),
        store::Error::Other(why) => why,
    }
}

/// Sleeps `ms`, waking every 100 ms to see whether the daemon asked the
/// service to stop; true if it did.
fn nap(ms: u64) -> bool {
    let mut left = ms;
    while left > 0 {
        if shutdown_requested() {
            return true;
        }
        let step = left.min(100);
        std::thread::sleep(Duration::from_millis(step));
        left -= step;
    }
    shutdown_requested()
}

export!(Service);
