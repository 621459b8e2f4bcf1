//! A component that keeps a counter in `wasi:keyvalue` (bucket
//! "default"): each round increments `counter`, stores `history/<n>` and
//! prints `count <n>` only after both writes were acknowledged, so a
//! printed count is one the host promised to keep. Modes (first argument):
//! `once` (default) one round; `loop` a round every 20 ms until cancelled;
//! `open NAME` open another bucket and say how it went; `batch N SIZE` a
//! set-many of N values of SIZE bytes, then how many `batch/` keys exist;
//! `oversize` a key and a value over the limits; `dump` every key;
//! `bench N` N sets then N gets, printing the mean cost of each.
//! As a core module (wasip1) there is no key-value store: it exits 1.

#[cfg(target_env = "p1")]
fn main() {
    eprintln!("kv_counter needs the component model (build for wasm32-wasip2)");
    std::process::exit(1);
}

#[cfg(target_env = "p2")]
wit_bindgen::generate!({ path: "../../../wit/deps/keyvalue", world: "wasi:keyvalue/imports", generate_all });

#[cfg(target_env = "p2")]
use wasi::keyvalue::{atomics, batch, store};

#[cfg(target_env = "p2")]
fn round(bucket: &store::Bucket) -> Result<u64, store::Error> {
    let n = atomics::increment(bucket, "counter", 1)?;
    bucket.set(&format!("history/{n:010}"), n.to_string().as_bytes())?;
    Ok(n)
}

#[cfg(target_env = "p2")]
fn keys(bucket: &store::Bucket) -> Vec<String> {
    let mut all = Vec::new();
    let mut cursor = None;
    loop {
        let page = bucket.list_keys(cursor).expect("list-keys");
        all.extend(page.keys);
        match page.cursor {
            Some(next) => cursor = Some(next),
            None => return all,
        }
    }
}

#[cfg(target_env = "p2")]
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args.first().map_or("once", String::as_str);
    if mode == "open" {
        match store::open(&args[1]) {
            Ok(_) => println!("opened {}", args[1]),
            Err(e) => println!("open {} failed: {e:?}", args[1]),
        }
        return;
    }
    let bucket = match store::open("default") {
        Ok(bucket) => bucket,
        Err(e) => {
            println!("open default failed: {e:?}");
            std::process::exit(2);
        }
    };
    match mode {
        "once" | "loop" => loop {
            match round(&bucket) {
                Ok(n) => println!("count {n}"),
                Err(e) => {
                    println!("round failed: {e:?}");
                    std::process::exit(3);
                }
            }
            if mode == "once" {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        },
        "batch" => {
            let n: usize = args[1].parse().expect("N");
            let size: usize = args[2].parse().expect("SIZE");
            let entries: Vec<(String, Vec<u8>)> = (0..n).map(|i| (format!("batch/{i:04}"), vec![b'x'; size])).collect();
            match batch::set_many(&bucket, &entries) {
                Ok(()) => println!("set-many ok"),
                Err(e) => println!("set-many failed: {e:?}"),
            }
            let kept = keys(&bucket).iter().filter(|k| k.starts_with("batch/")).count();
            println!("batch keys {kept}");
        }
        "oversize" => {
            let long_key = "k".repeat(1025);
            println!("long key: {:?}", bucket.set(&long_key, b"v"));
            println!("big value: {:?}", bucket.set("big", &vec![0u8; 12 * 1024 + 1]));
            println!("max value: {:?}", bucket.set("max", &vec![0u8; 12 * 1024]));
            println!("big value kept: {:?}", bucket.exists("big"));
        }
        "bench" => {
            // Per-call cost as the guest sees it (benches/keyvalue.rs).
            let n: u32 = args[1].parse().expect("N");
            let began = std::time::Instant::now();
            for i in 0..n {
                bucket.set(&format!("bench/{i}"), b"0123456789abcdef").expect("set");
            }
            let set = began.elapsed() / n;
            let began = std::time::Instant::now();
            for i in 0..n {
                bucket.get(&format!("bench/{i}")).expect("get").expect("present");
            }
            let get = began.elapsed() / n;
            println!("bench set_ns {} get_ns {}", set.as_nanos(), get.as_nanos());
        }
        "dump" => {
            for key in keys(&bucket) {
                let value = bucket.get(&key).expect("get").unwrap_or_default();
                println!("{key}={}", String::from_utf8_lossy(&value));
            }
        }
        other => {
            eprintln!("unknown mode {other}");
            std::process::exit(64);
        }
    }
}
