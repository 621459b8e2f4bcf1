//! The provider: acme:thermo/sensor@1.2.0, with state per instance.

wit_bindgen::generate!({ path: "wit", world: "provider" });

use exports::acme::thermo::sensor::{Fault, Features, Guest, Reading, Unit};
use std::sync::atomic::{AtomicU64, Ordering};

static CALLS: AtomicU64 = AtomicU64::new(0);

fn label() -> String {
    std::env::var("LABEL").unwrap_or_else(|_| "kitchen".to_owned())
}

fn reading(n: u64, unit: Unit) -> Reading {
    let celsius = 20.0 + n as f64 / 2.0;
    let value = match unit {
        Unit::Celsius => celsius,
        Unit::Fahrenheit => celsius * 9.0 / 5.0 + 32.0,
    };
    Reading {
        value,
        unit,
        label: label(),
        at: n,
    }
}

struct Sensor;

impl Guest for Sensor {
    fn read(unit: Unit) -> Result<Reading, Fault> {
        CALLS.fetch_add(1, Ordering::Relaxed);
        match label().as_str() {
            "broken" => Err(Fault::OutOfRange(-273.5)),
            "offline" => Err(Fault::Offline),
            _ => Ok(reading(3, unit)),
        }
    }

    fn history(count: u32) -> Vec<Reading> {
        CALLS.fetch_add(1, Ordering::Relaxed);
        (0..u64::from(count)).map(|n| reading(n, Unit::Celsius)).collect()
    }

    fn echo(
        data: Vec<u8>,
        tag: Option<String>,
        mix: (i8, u16, i32, u64, char, bool, f32),
    ) -> (Vec<u8>, Option<String>, (i8, u16, i32, u64, char, bool, f32)) {
        CALLS.fetch_add(1, Ordering::Relaxed);
        (data, tag, mix)
    }

    fn capabilities() -> Features {
        CALLS.fetch_add(1, Ordering::Relaxed);
        Features::HUMIDITY | Features::BATTERY
    }

    fn count() -> u64 {
        CALLS.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn whoami() -> String {
        CALLS.fetch_add(1, Ordering::Relaxed);
        label()
    }

    fn spin() {
        let mut n: u64 = 0;
        loop {
            n = std::hint::black_box(n.wrapping_add(1));
        }
    }

    fn crash() -> u32 {
        panic!("the sensor crashed on purpose")
    }
}

export!(Sensor);
