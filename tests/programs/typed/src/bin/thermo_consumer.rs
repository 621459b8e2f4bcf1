//! A consumer of acme:thermo/sensor@1.2.0. What it does is its first
//! argument: `all` (default) calls every plain function once and prints
//! each answer; `loop` prints `whoami` every 50 ms, forever; `spin` and
//! `crash` call the functions that never return and that trap; `calls N`
//! makes N calls of `count` and prints the last answer; `bench N` times
//! N calls and prints the median and 99th percentile.

wit_bindgen::generate!({ path: "wit", world: "consumer" });

use acme::thermo::sensor::{self, Unit};

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_else(|| "all".to_owned());
    match mode.as_str() {
        "all" => {
            println!("read: {:?}", sensor::read(Unit::Celsius));
            println!("read-f: {:?}", sensor::read(Unit::Fahrenheit));
            let history = sensor::history(3);
            println!(
                "history: {} {:?}",
                history.len(),
                history.iter().map(|r| r.value).collect::<Vec<_>>()
            );
            let mix = (-8i8, 65535u16, -2_000_000i32, u64::MAX, 'ü', true, 1.5f32);
            println!(
                "echo: {:?}",
                sensor::echo(&[0, 1, 254, 255], Some("tag ✓"), mix)
            );
            println!("echo-none: {:?}", sensor::echo(&[], None, mix).1);
            println!("features: {:?}", sensor::capabilities());
            println!("whoami: {}", sensor::whoami());
        }
        "loop" => loop {
            println!("whoami: {}", sensor::whoami());
            std::thread::sleep(std::time::Duration::from_millis(50));
        },
        "spin" => {
            println!("calling spin");
            sensor::spin();
            println!("spin returned");
        }
        "crash" => {
            println!("calling crash");
            let n = sensor::crash();
            println!("crash returned {n}");
        }
        "calls" => {
            let n: u64 = std::env::args().nth(2).and_then(|n| n.parse().ok()).unwrap_or(1);
            let mut last = 0;
            for _ in 0..n {
                last = sensor::count();
            }
            println!("count: {last}");
        }
        "bench" => {
            // Latency of one small call, as the caller sees it.
            let n: usize = std::env::args().nth(2).and_then(|n| n.parse().ok()).unwrap_or(2000);
            let mut took = Vec::with_capacity(n);
            for _ in 0..n {
                let began = std::time::Instant::now();
                std::hint::black_box(sensor::count());
                took.push(began.elapsed().as_nanos() as u64);
            }
            took.sort_unstable();
            println!("bench: n={n} p50_ns={} p99_ns={}", took[n / 2], took[n * 99 / 100]);
        }
        other => {
            eprintln!("unknown mode {other}");
            std::process::exit(2);
        }
    }
}
