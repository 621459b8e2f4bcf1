//! `room-sensor`: a simulated room, provided as `example:thermostat/room`.
//! The daemon keeps one instance ready (`kind = "provider"`) and serves
//! the consumers' calls on it one at a time, so the state below lives as
//! long as the instance: the room warms by 0.3 °C per reading while the
//! heater is on and cools by 0.1 °C while it is off.

wit_bindgen::generate!({ path: "wit", world: "sensor" });

use exports::example::thermostat::room::{Guest, Reading};
use std::cell::Cell;

/// Where the simulated room starts, in °C.
const START: f64 = 18.0;

thread_local! {
    static CELSIUS: Cell<f64> = const { Cell::new(START) };
    static HEATING: Cell<bool> = const { Cell::new(false) };
    static SEQ: Cell<u64> = const { Cell::new(0) };
}

struct Room;

impl Guest for Room {
    fn read() -> Reading {
        let heating = HEATING.get();
        let step = if heating { 0.3 } else { -0.1 };
        let celsius = (CELSIUS.get() + step).clamp(5.0, 35.0);
        CELSIUS.set(celsius);
        let seq = SEQ.get() + 1;
        SEQ.set(seq);
        Reading { celsius, heating, seq }
    }

    fn heat(on: bool) {
        if on != HEATING.get() {
            println!("heater {}", if on { "on" } else { "off" });
        }
        HEATING.set(on);
    }
}

export!(Room);
