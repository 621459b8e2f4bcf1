//! `cargo bench --bench startup`: figures and ratios against a baseline
//! measured in the same run.
//!
//! 1. hello from an installed artifact: Arcella's path (store lookup,
//!    digest + fingerprint check, mmap deserialize, instantiate, run)
//!    against the same work done with the wasmtime API directly
//!    (`Module::deserialize_file`, instantiate, run), p50/p99 in µs.
//! 2. a CPU workload (cpu_loop) as a native and as a pulley64 artifact.
//! 3. the stripped size of the device binary, if it has been built
//!    (`cargo build --profile device --no-default-features --features device`).
//!
//! Guests print to stdout; the bench redirects nothing, so run it as
//! `cargo bench --bench startup 2>/dev/null | grep -v '^hello\|^primes'`
//! or just read past them. `scripts/bench` does that.

// A bench that cannot set up should stop loudly, not report a figure.
#![allow(clippy::expect_used)]

mod support;
use arcella_core::artifact::{ArtifactStore, Program, format};
use arcella_core::engine::new_engine;
use arcella_core::run::{Grants, Invocation, Limits, Output, run_blocking};
use arcella_core::wasmtime::{Engine, Linker, Module, Store};
use arcella_core::{ArtifactTarget, EngineProfile};
use arcella_test_programs::artifact;
use std::path::Path;
use std::time::{Duration, Instant};
use support::percentile;

const ITERATIONS: usize = 200;

fn main() {
    println!("arcella startup bench ({} iterations per figure)\n", ITERATIONS);
    hello_from_store();
    cpu_native_vs_pulley();
    device_binary_size();
}

fn hello_from_store() {
    let profile = EngineProfile::default();
    let engine = new_engine(&profile).expect("engine");
    let data = tempfile::tempdir().expect("tempdir");
    let store = ArtifactStore::open(data.path()).expect("store");
    let bytes = std::fs::read(artifact("hello_p1", "native")).expect("hello artifact");
    let id = store
        .put_bytes(&bytes, Path::new("hello_p1.native.cwasm"))
        .expect("put");

    // Baseline: wasmtime's own API on the same code file, same engine.
    let code_path = store.dir().join(format!("{id}.code"));
    let baseline = measure(|| {
        // SAFETY: the file was written by the store from a verified artifact
        // compiled for this engine; nothing else writes the temp directory.
        let module = unsafe { Module::deserialize_file(&engine, &code_path) }.expect("deserialize");
        run_direct(&engine, &module);
    });

    let grants = Grants {
        args: vec!["hello".into()],
        ..Grants::default()
    };
    let limits = Limits::default();
    let arcella = measure(|| {
        let program = store.load(&engine, &profile, &id).expect("load");
        let invocation = Invocation {
            name: "hello",
            program: &program,
            grants: &grants,
            limits: &limits,
            profile: &profile,
            output: &Output::Inherit,
            entrypoint: None,
            stop: None,
            health: None,
            host: &arcella_core::host::HostServices::default(),
            provide: None,
            usage: None,
        };
        assert_eq!(run_blocking(&invocation).expect("run"), 0);
    });
    report(
        "hello: store load + instantiate + run",
        arcella,
        "wasmtime API directly",
        baseline,
    );
}

/// The shortest correct WASI p1 run through wasmtime's own API.
fn run_direct(engine: &Engine, module: &Module) {
    let wasi = wasmtime_wasi::WasiCtxBuilder::new()
        .inherit_stdio()
        .args(&["hello"])
        .build_p1();
    let mut store = Store::new(engine, wasi);
    store.set_fuel(u64::MAX).expect("fuel");
    store.set_epoch_deadline(u64::MAX / 2);
    let mut linker: Linker<wasmtime_wasi::p1::WasiP1Ctx> = Linker::new(engine);
    wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |cx| cx).expect("link");
    let instance = linker.instantiate(&mut store, module).expect("instantiate");
    let start = instance.get_typed_func::<(), ()>(&mut store, "_start").expect("_start");
    match start.call(&mut store, ()) {
        Ok(()) => {}
        Err(e) => assert_eq!(
            e.downcast_ref::<wasmtime_wasi::I32Exit>().map(|e| e.0),
            Some(0),
            "{e:?}"
        ),
    }
}

fn measure(mut f: impl FnMut()) -> Vec<Duration> {
    for _ in 0..10 {
        f();
    }
    (0..ITERATIONS)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect()
}

fn report(what: &str, mut ours: Vec<Duration>, baseline_name: &str, mut baseline: Vec<Duration>) {
    let (o50, o99) = (percentile(&mut ours, 0.5), percentile(&mut ours, 0.99));
    let (b50, b99) = (percentile(&mut baseline, 0.5), percentile(&mut baseline, 0.99));
    eprintln!();
    println!("{what}: p50 {o50:.0} µs, p99 {o99:.0} µs");
    println!("  baseline ({baseline_name}): p50 {b50:.0} µs, p99 {b99:.0} µs");
    println!("  ratio p50 {:.2}x, p99 {:.2}x\n", o50 / b50, o99 / b99);
}

fn cpu_native_vs_pulley() {
    let time = |target: &str| {
        let bytes = std::fs::read(artifact("cpu_loop_p1", target)).expect("cpu_loop artifact");
        let header = format::decode(&bytes).expect("decode").header;
        let profile = EngineProfile::default().with_target(ArtifactTarget::from_resolved(&header.fingerprint.target));
        let engine = new_engine(&profile).expect("engine");
        let program: Program =
            arcella_core::artifact::load::load_bytes(&engine, &profile, &bytes, Path::new(target)).expect("load");
        let grants = Grants {
            args: vec!["cpu_loop".into(), "60000".into()],
            ..Grants::default()
        };
        let limits = Limits::default();
        let invocation = Invocation {
            name: "cpu_loop",
            program: &program,
            grants: &grants,
            limits: &limits,
            profile: &profile,
            output: &Output::Inherit,
            entrypoint: None,
            stop: None,
            health: None,
            host: &arcella_core::host::HostServices::default(),
            provide: None,
            usage: None,
        };
        let mut runs: Vec<Duration> = (0..5)
            .map(|_| {
                let start = Instant::now();
                assert_eq!(run_blocking(&invocation).expect("run"), 0);
                start.elapsed()
            })
            .collect();
        percentile(&mut runs, 0.5) / 1000.0
    };
    let native = time("native");
    let pulley = time("pulley64");
    eprintln!();
    println!("cpu_loop (primes below 60000), p50 of 5 runs:");
    println!(
        "  native {native:.1} ms, pulley64 {pulley:.1} ms, pulley64/native {:.1}x\n",
        pulley / native
    );
}

fn device_binary_size() {
    let target_dir =
        std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/target").into());
    let path = Path::new(&target_dir).join("device/arcella");
    match std::fs::metadata(&path) {
        Ok(meta) => println!(
            "device binary (--profile device --no-default-features --features device, stripped): {} bytes ({:.2} MiB) at {}",
            meta.len(),
            meta.len() as f64 / (1024.0 * 1024.0),
            path.display()
        ),
        Err(_) => println!(
            "device binary: not built; run `cargo build --profile device --no-default-features --features device` first (scripts/bench does)"
        ),
    }
}
