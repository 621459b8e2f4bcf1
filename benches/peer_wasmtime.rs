//! "wasmtime with its defaults": the baseline `scripts/bench-peers` runs
//! guests with beside `arcella run`, made with the wasmtime crate Arcella
//! links (48.0.8) and `Config::new()`, as the wasmtime CLI's `run` does.
//! Settings Arcella may add can be switched on one by one to measure them:
//!
//! ```text
//! peer_wasmtime [--fuel] [--epoch] [--small-reservation] [--pulley] FILE.wasm [ARGS...]
//! ```
//!
//! `--small-reservation` is Arcella's small profile (32 MiB + 64 KiB
//! guard). Not a benchmark harness of its own: it runs one guest, WASI
//! preview 1 with inherited stdio, and exits with its exit code.

use arcella_core::wasmtime::{Config, Engine, Linker, Module, Store};
use std::process::ExitCode;
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p1::WasiP1Ctx;

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut config = Config::new();
    let mut fuel = false;
    while let Some(flag) = args.first().filter(|a| a.starts_with("--")).cloned() {
        args.remove(0);
        match flag.as_str() {
            "--fuel" => {
                fuel = true;
                config.consume_fuel(true);
            }
            "--epoch" => {
                config.epoch_interruption(true);
            }
            "--small-reservation" => {
                config
                    .memory_reservation(32 << 20)
                    .memory_guard_size(64 << 10)
                    .memory_reservation_for_growth(1 << 20);
            }
            "--pulley" => {
                if let Err(e) = config.target("pulley64") {
                    eprintln!("peer_wasmtime: {e}");
                    return ExitCode::from(2);
                }
            }
            // cargo bench passes this to harness = false binaries.
            "--bench" => {}
            other => {
                eprintln!("peer_wasmtime: unknown flag {other}");
                return ExitCode::from(2);
            }
        }
    }
    let Some(file) = args.first().cloned() else {
        eprintln!("usage: peer_wasmtime [--fuel] [--epoch] [--small-reservation] [--pulley] FILE.wasm [ARGS...]");
        return ExitCode::from(2);
    };
    match run(&config, fuel, &file, &args) {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            eprintln!("peer_wasmtime: {file}: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(config: &Config, fuel: bool, file: &str, args: &[String]) -> arcella_core::wasmtime::Result<i32> {
    let engine = Engine::new(config)?;
    let module = Module::from_file(&engine, file)?;
    let mut linker: Linker<WasiP1Ctx> = Linker::new(&engine);
    wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |cx| cx)?;
    let wasi = WasiCtxBuilder::new().inherit_stdio().args(args).build_p1();
    let mut store = Store::new(&engine, wasi);
    if fuel {
        store.set_fuel(u64::MAX)?;
    }
    // Epoch checks run, but the epoch never advances: their cost alone.
    store.set_epoch_deadline(u64::MAX);
    let instance = linker.instantiate(&mut store, &module)?;
    let start = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
    match start.call(&mut store, ()) {
        Ok(()) => Ok(0),
        Err(e) => match e.downcast_ref::<wasmtime_wasi::I32Exit>() {
            Some(exit) => Ok(exit.0),
            None => Err(e),
        },
    }
}
