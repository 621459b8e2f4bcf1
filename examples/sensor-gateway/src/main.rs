//! A gateway service: every `interval_ms` it polls a sensor over TCP
//! (send `READ\n`, read one line back), keeps the count of readings and
//! the latest one in `wasi:keyvalue` (so both survive restarts, updates
//! and rollbacks), and logs through `wasi:logging` at levels. What it
//! polls comes from `wasi:config` (`sensor`, `interval_ms`), so an
//! operator changes it with `arcella config` without a redeploy. At start
//! it tries an address its deployment does not grant (`forbidden`) and
//! logs the refusal: deny by default, visible. With `[http] listen` in its
//! deployment, each request gets `{"latest": "...", "readings": N}` from
//! the same key-value state (a fresh instance per request: state lives in
//! the store, not in memory).

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
        path: ["../../wit/deps/config", "../../wit/deps/logging", "../../wit/deps/keyvalue", "../../wit/deps/service"],
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

/// The latest reading over HTTP (`wasi:http/incoming-handler`).
struct Latest;

impl wasip2::exports::http::incoming_handler::Guest for Latest {
    fn handle(_request: wasip2::http::types::IncomingRequest, out: wasip2::http::types::ResponseOutparam) {
        use wasip2::http::types::{Fields, OutgoingBody, OutgoingResponse, ResponseOutparam};
        let state = store::open("default").and_then(|bucket| {
            let latest = bucket.get("latest")?.unwrap_or_default();
            let readings = atomics::increment(&bucket, "readings", 0)?;
            Ok((String::from_utf8_lossy(&latest).into_owned(), readings))
        });
        let (status, body) = match state {
            Ok((latest, readings)) => (200, format!("{{\"latest\": {latest:?}, \"readings\": {readings}}}\n")),
            Err(e) => (503, format!("{{\"error\": {:?}}}\n", format!("{e:?}"))),
        };
        let headers = Fields::new();
        let _ = headers.set("content-type", &[b"application/json".to_vec()]);
        let response = OutgoingResponse::new(headers);
        let _ = response.set_status_code(status);
        let Ok(outgoing) = response.body() else { return };
        ResponseOutparam::set(out, Ok(response));
        if let Ok(stream) = outgoing.write() {
            let _ = stream.blocking_write_and_flush(body.as_bytes());
        }
        let _ = OutgoingBody::finish(outgoing, None);
    }
}

wasip2::http::proxy::export!(Latest);

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
