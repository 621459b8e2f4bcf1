//! A gateway service: every `interval_ms` it polls a sensor over TCP
//! (send `READ\n`, read one line back), keeps the count of readings and
//! the latest one in `wasi:keyvalue` (so both survive restarts, updates
//! and rollbacks), and logs through `wasi:logging` at levels. What it
//! polls comes from `wasi:config` (`sensor`, `interval_ms`), so an
//! operator changes it with `arcella config` without a redeploy. At start
//! it tries an address its deployment does not grant (`forbidden`) and
//! logs the refusal: deny by default, visible.

mod bindings {
    wit_bindgen::generate!({
        inline: "
            package example:sensor-gateway;
            world gateway {
                import wasi:config/store@0.2.0-rc.1;
                import wasi:logging/logging@0.1.0-draft;
                import wasi:keyvalue/store@0.2.0-draft;
                import wasi:keyvalue/atomics@0.2.0-draft;
                import arcella:service/lifecycle@0.1.0;
            }
        ",
        path: ["../../wit/deps/config", "../../wit/deps/logging", "../../wit/deps/keyvalue", "../../wit/lifecycle.wit"],
        generate_all,
    });
}

use bindings::arcella::service::lifecycle::shutdown_requested;
use bindings::wasi::config::store as config;
use bindings::wasi::keyvalue::{atomics, store};
use bindings::wasi::logging::logging::{Level, log};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

fn setting(key: &str) -> Option<String> {
    config::get(key).ok().flatten()
}

/// One reading: connect, ask, read a line.
fn poll(sensor: SocketAddr) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(sensor)?;
    stream.write_all(b"READ\n")?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line)?;
    Ok(line.trim().to_owned())
}

/// Sleeps `ms`, waking every 50 ms to see whether it should stop.
fn nap(ms: u64) -> bool {
    let mut left = ms;
    while left > 0 {
        if shutdown_requested() {
            return false;
        }
        let step = left.min(50);
        std::thread::sleep(Duration::from_millis(step));
        left -= step;
    }
    !shutdown_requested()
}

fn main() {
    let bucket = match store::open("default") {
        Ok(bucket) => bucket,
        Err(e) => {
            log(Level::Critical, "state", &format!("cannot open the key-value bucket: {e:?}"));
            std::process::exit(1);
        }
    };
    if let Some(forbidden) = setting("forbidden").and_then(|a| a.parse::<SocketAddr>().ok()) {
        match poll(forbidden) {
            Err(e) => log(Level::Warn, "policy", &format!("{forbidden} refused as it should be: {e}")),
            Ok(_) => log(Level::Error, "policy", &format!("{forbidden} answered: the grant is wider than meant")),
        }
    }
    loop {
        let interval = setting("interval_ms").and_then(|v| v.parse().ok()).unwrap_or(1000);
        match setting("sensor").map(|a| a.parse::<SocketAddr>()) {
            None => log(Level::Warn, "config", "no `sensor` configured; set one with arcella config"),
            Some(Err(e)) => log(Level::Error, "config", &format!("`sensor` is not HOST:PORT: {e}")),
            Some(Ok(sensor)) => match poll(sensor) {
                Ok(reading) => {
                    let stored = atomics::increment(&bucket, "readings", 1)
                        .and_then(|count| bucket.set("latest", reading.as_bytes()).map(|()| count));
                    match stored {
                        Ok(count) => {
                            log(Level::Info, "poll", &format!("reading {reading} (#{count})"));
                            println!("reading={reading} count={count}");
                        }
                        Err(e) => log(Level::Error, "state", &format!("cannot keep the reading: {e:?}")),
                    }
                }
                Err(e) => log(Level::Warn, "poll", &format!("{sensor}: {e}")),
            },
        }
        if !nap(interval) {
            println!("stopping");
            return;
        }
    }
}
