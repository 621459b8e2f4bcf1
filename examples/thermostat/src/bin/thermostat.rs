//! `thermostat`: the controller. Every second it calls the `room-sensor`
//! provider through `example:thermostat/room` (a typed call the daemon
//! carries from this worker to wherever the provider runs), switches the
//! heater towards the target and publishes the reading as JSON on
//! `home/livingroom/temp`, which the daemon's MQTT bridge forwards to the
//! broker. Its message handler takes a new target (°C, 5 to 35) on
//! `cmd/thermostat/set`, which the bridge brings in from the broker's
//! `home/livingroom/thermostat/set`. The handler runs in an instance of
//! its own (docs/messaging.md), so the target is handed to the loop
//! through `wasi:keyvalue`, where it also survives restarts and updates.

mod bindings {
    wit_bindgen::generate!({
        inline: "
            package example:thermostat-controller;
            world controller {
                import example:thermostat/room@1.0.0;
                import wasi:messaging/producer@0.2.0-draft;
                import wasi:keyvalue/store@0.2.0-draft;
                import wasi:logging/logging@0.1.0-draft;
                import arcella:service/lifecycle@0.1.0;
                export wasi:messaging/incoming-handler@0.2.0-draft;
            }
        ",
        path: [
            "wit",
            "../../wit/deps/messaging",
            "../../wit/deps/keyvalue",
            "../../wit/deps/logging",
            "../../wit/deps/service",
        ],
        generate_all,
    });
}

use bindings::arcella::service::lifecycle::shutdown_requested;
use bindings::example::thermostat::room;
use bindings::wasi::keyvalue::store;
use bindings::wasi::logging::logging::{Level, log};
use bindings::wasi::messaging::{producer, types};
use std::time::Duration;

/// Where readings go (granted in `[capabilities.messaging] publish`).
const READINGS: &str = "home/livingroom/temp";
/// The target until one is set, in °C.
const DEFAULT_TARGET: f64 = 21.0;
/// The targets a command may set, in °C.
const TARGETS: std::ops::RangeInclusive<f64> = 5.0..=35.0;

fn main() {
    let client = types::Client::connect("local").expect("the message bus");
    log(Level::Info, "thermostat", &format!("publishing on {READINGS} every second"));
    while !shutdown_requested() {
        let target = target().unwrap_or(DEFAULT_TARGET);
        let reading = room::read();
        room::heat(reading.celsius < target);
        let json = format!(
            "{{\"celsius\":{:.1},\"target\":{target:.1},\"heating\":{},\"seq\":{}}}",
            reading.celsius, reading.heating, reading.seq
        );
        let message = types::Message::new(json.as_bytes());
        message.set_content_type("application/json");
        if let Err(e) = producer::send(&client, READINGS, message) {
            log(Level::Warn, "thermostat", &format!("publish on {READINGS}: {e:?}"));
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    log(Level::Info, "thermostat", "stopping");
}

/// The target set by the last command, if any.
fn target() -> Option<f64> {
    let bucket = store::open("default").ok()?;
    let bytes = bucket.get("target").ok()??;
    String::from_utf8(bytes).ok()?.parse().ok()
}

struct Commands;

impl bindings::exports::wasi::messaging::incoming_handler::Guest for Commands {
    /// `cmd/thermostat/set` with a number of °C sets the target.
    fn handle(message: types::Message) -> Result<(), types::Error> {
        let topic = message.topic().unwrap_or_default();
        let text = String::from_utf8_lossy(&message.data()).trim().to_owned();
        if topic != "cmd/thermostat/set" {
            return Err(types::Error::Other(format!("no command on {topic:?}; send a target to cmd/thermostat/set")));
        }
        let target: f64 = text
            .parse()
            .ok()
            .filter(|t| TARGETS.contains(t))
            .ok_or_else(|| types::Error::Other(format!("a target is a number of °C from 5 to 35, not {text:?}")))?;
        let bucket = store::open("default").map_err(|e| types::Error::Other(format!("{e:?}")))?;
        bucket
            .set("target", target.to_string().as_bytes())
            .map_err(|e| types::Error::Other(format!("keeping the target: {e:?}")))?;
        log(Level::Info, "thermostat", &format!("target set to {target:.1} °C"));
        Ok(())
    }
}

bindings::export!(Commands with_types_in bindings);
