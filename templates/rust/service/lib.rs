//! A service in Rust on Arcella: logs through wasi:logging, reads its
//! greeting from wasi:config, counts its starts in wasi:keyvalue, and stops
//! when the daemon asks (arcella:service/lifecycle). Bindings come from the
//! `arcella:platform/service` world; the component exports `wasi:cli/run`.

wit_bindgen::generate!({ path: "wit", world: "arcella:platform/service", generate_all });

use arcella::service::lifecycle::shutdown_requested;
use std::time::Duration;
use wasi::config::store as config;
use wasi::keyvalue::{atomics, store};
use wasi::logging::logging::{Level, log};

const LANG: &str = "rust";

fn greeting() -> String {
    match config::get("greeting") {
        Ok(value) => value.unwrap_or_else(|| "hello".to_owned()),
        Err(e) => {
            log(Level::Warn, LANG, &format!("config unreadable: {e:?}"));
            "hello".to_owned()
        }
    }
}

struct Service;

impl exports::wasi::cli::run::Guest for Service {
    fn run() -> Result<(), ()> {
        // `arcella run` grants no store: then it counts nothing.
        let (bucket, starts) = match store::open("default").and_then(|b| Ok((atomics::increment(&b, "starts", 1)?, b))) {
            Ok((starts, bucket)) => (Some(bucket), starts),
            Err(e) => {
                log(Level::Warn, LANG, &format!("no key-value store ({e:?}): counting nothing"));
                (None, 0)
            }
        };
        let remember = |said: &str| {
            if let Some(bucket) = &bucket {
                let _ = bucket.set("greeting", said.as_bytes());
            }
        };
        let mut said = greeting();
        remember(&said);
        log(Level::Info, LANG, &format!("{said} from {LANG}, start {starts}"));
        while !shutdown_requested() {
            let now = greeting();
            if now != said {
                said = now;
                remember(&said);
                log(Level::Info, LANG, &format!("greeting is now {said}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        log(Level::Info, LANG, "stopping");
        Ok(())
    }
}

export!(Service);
