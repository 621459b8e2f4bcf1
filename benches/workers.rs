//! `cargo bench --bench workers`: worker processes, measured through the
//! daemon's own `WorkerPool` against real `arcella-worker` processes.
//!
//! 1. cold start: spawn + exec + handshake + sandbox + load + instantiate
//!    until the worker reports the guest running, p50/p99; and forked
//!    from a template that holds the code loaded (`template_above`),
//!    while another worker keeps that template running;
//! 2. idle worker RSS (a worker hosting the sleeping ticker service);
//! 3. IPC round trip (ping → pong through the worker's executor);
//! 4. hello run to completion in a warm worker against the same run
//!    in-process on the daemon's executor (ratio).

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod support;
use arcella_core::EngineProfile;
use arcella_core::artifact::{ArtifactKind, ArtifactStore};
use arcella_core::daemon::workers::{RemoteRun, WorkerConfig, WorkerPool};
use arcella_core::engine::new_engine;
use arcella_core::protocol::worker::InstanceSpec;
use arcella_core::run::{self, Grants, Invocation, Limits, LogBook, Output};
use arcella_test_programs::artifact;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::percentile;

const COLD_STARTS: usize = 30;
const PINGS: usize = 2000;
const RUNS: usize = 100;

struct Bench {
    pool: WorkerPool,
    store: ArtifactStore,
    _data: tempfile::TempDir,
}

impl Bench {
    fn put(&self, guest: &str) -> String {
        let bytes = std::fs::read(artifact(guest, "native")).expect("artifact");
        self.store.put_bytes(&bytes, Path::new(guest)).expect("put")
    }

    fn request(&self, id: &str, name: &str, group: &str, started: Arc<Mutex<Option<Instant>>>) -> RemoteRun {
        // Never asked to stop: a closed channel reads as "not asked".
        let (_, stop) = async_channel::bounded(1);
        RemoteRun {
            group: group.into(),
            spec: InstanceSpec {
                name: name.into(),
                kind: ArtifactKind::Module,
                grants: Grants {
                    args: vec![name.into()],
                    ..Grants::default()
                },
                limits: Limits::default(),
                entrypoint: None,
                provider_instances: None,
            },
            code: self.store.open_code(id).expect("code"),
            book: LogBook::new(name, None),
            stop,
            on_started: Box::new(move |_| *started.lock().unwrap() = Some(Instant::now())),
            host: arcella_core::host::HostServices::default(),
            health: None,
            // Never changed: a closed channel reads as "no change will come".
            config_changed: async_channel::bounded(1).1,
            provide: None,
        }
    }
}

fn main() {
    let executor = Arc::new(smol::Executor::new());
    let data = tempfile::tempdir().expect("tempdir");
    let profile = EngineProfile::default();
    let config = WorkerConfig {
        binary: Some(env!("CARGO_BIN_EXE_arcella-worker").into()),
        ..WorkerConfig::default()
    };
    let bench = Bench {
        pool: WorkerPool::new(&config, &profile, executor.clone(), None, Vec::new(), None),
        store: ArtifactStore::open(data.path()).expect("store"),
        _data: data,
    };
    let forking = WorkerPool::new(
        &WorkerConfig {
            template_above: Some(0),
            ..config.clone()
        },
        &profile,
        executor.clone(),
        None,
        Vec::new(),
        None,
    );
    let run = executor.run(async {
        println!("arcella worker bench\n");
        cold_start(&bench).await;
        cold_start_forked(&bench, &forking).await;
        forking.shutdown().await;
        let ticker = idle_rss(&bench).await;
        round_trip(&bench).await;
        worker_vs_in_process(&bench, &profile).await;
        drop(ticker);
        bench.pool.shutdown().await;
    });
    smol::block_on(async_compat::Compat::new(run));
}

async fn cold_start(bench: &Bench) {
    let hello = bench.put("hello_p1");
    let mut samples = Vec::new();
    for _ in 0..COLD_STARTS {
        while bench.pool.pid_of("cold").is_some() {
            smol::Timer::after(Duration::from_millis(1)).await;
        }
        let started = Arc::new(Mutex::new(None));
        let request = bench.request(&hello, "hello", "cold", started.clone());
        let asked = Instant::now();
        let code = bench.pool.run(request).await.expect("hello runs");
        assert_eq!(code, 0);
        let at = started.lock().unwrap().expect("started");
        samples.push(at - asked);
        // Let the idle worker go, so the next start is cold again.
        smol::Timer::after(Duration::from_millis(20)).await;
    }
    println!(
        "worker cold start (spawn+exec → guest running), {COLD_STARTS} runs: p50 {:.0} µs (goal ≤ 10 ms), p99 {:.0} µs",
        percentile(&mut samples, 0.5),
        percentile(&mut samples, 0.99)
    );
}

/// Cold starts of the ticker in a new worker forked from the template
/// that holds its code, kept running by a ticker in another group.
async fn cold_start_forked(bench: &Bench, forking: &WorkerPool) {
    let ticker = bench.put("ticker");
    let start = |group: &str| {
        let started = Arc::new(Mutex::new(None));
        let request = bench.request(&ticker, "ticker", group, started.clone());
        let pool = forking.clone();
        let asked = Instant::now();
        let task = smol::spawn(async move {
            let _ = pool.run(request).await;
        });
        (task, started, asked)
    };
    let until_started = |started: Arc<Mutex<Option<Instant>>>| async move {
        loop {
            if let Some(at) = *started.lock().unwrap() {
                return at;
            }
            smol::Timer::after(Duration::from_micros(200)).await;
        }
    };
    let (keeper, started, _) = start("keeper");
    until_started(started).await;
    let mut samples = Vec::new();
    for _ in 0..COLD_STARTS {
        let (task, started, asked) = start("forked");
        samples.push(until_started(started).await - asked);
        // Cancelled: the worker has nothing left and goes.
        drop(task);
        while forking.pid_of("forked").is_some() {
            smol::Timer::after(Duration::from_millis(1)).await;
        }
        smol::Timer::after(Duration::from_millis(20)).await;
    }
    drop(keeper);
    println!(
        "worker cold start forked from a running template (fork → guest running), {COLD_STARTS} runs: p50 {:.0} µs (goal ≤ 10 ms), p99 {:.0} µs",
        percentile(&mut samples, 0.5),
        percentile(&mut samples, 0.99)
    );
}

/// Starts the ticker in group `warm` (kept for the later figures).
async fn idle_rss(bench: &Bench) -> smol::Task<()> {
    let ticker = bench.put("ticker");
    let started = Arc::new(Mutex::new(None));
    let request = bench.request(&ticker, "ticker", "warm", started.clone());
    let pool = bench.pool.clone();
    let task = smol::spawn(async move {
        let _ = pool.run(request).await;
    });
    while started.lock().unwrap().is_none() {
        smol::Timer::after(Duration::from_millis(1)).await;
    }
    smol::Timer::after(Duration::from_millis(1500)).await;
    let pid = bench.pool.pid_of("warm").expect("warm worker");
    let rss = arcella_core::sys::process::resident_bytes(pid).unwrap_or(0);
    let usage = bench.pool.usage("warm").await.expect("usage").expect("running");
    println!(
        "idle worker hosting the ticker service: {} KiB resident (the worker reports {} KiB)",
        rss / 1024,
        usage.resident_bytes / 1024
    );
    task
}

async fn round_trip(bench: &Bench) {
    let mut samples = Vec::with_capacity(PINGS);
    for _ in 0..PINGS {
        let asked = Instant::now();
        bench.pool.usage("warm").await.expect("pong").expect("running");
        samples.push(asked.elapsed());
    }
    println!(
        "IPC round trip daemon → worker → daemon, {PINGS} pings: p50 {:.1} µs, p99 {:.1} µs",
        percentile(&mut samples, 0.5),
        percentile(&mut samples, 0.99)
    );
}

async fn worker_vs_in_process(bench: &Bench, profile: &EngineProfile) {
    let hello = bench.put("hello_p1");
    let mut remote = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let request = bench.request(&hello, "hello", "warm", Arc::new(Mutex::new(None)));
        let asked = Instant::now();
        assert_eq!(bench.pool.run(request).await.expect("runs"), 0);
        remote.push(asked.elapsed());
    }
    let engine = new_engine(profile).expect("engine");
    let program = bench.store.load(&engine, profile, &hello).expect("load");
    let grants = Grants {
        args: vec!["hello".into()],
        ..Grants::default()
    };
    let limits = Limits::default();
    let mut local = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let output = Output::Capture(LogBook::new("hello", None));
        let invocation = Invocation {
            name: "hello",
            program: &program,
            grants: &grants,
            limits: &limits,
            profile,
            output: &output,
            entrypoint: None,
            stop: None,
            health: None,
            host: &arcella_core::host::HostServices::default(),
            provide: None,
            usage: None,
        };
        let asked = Instant::now();
        assert_eq!(run::run(&invocation).await.expect("runs"), 0);
        local.push(asked.elapsed());
    }
    let (r50, l50) = (percentile(&mut remote, 0.5), percentile(&mut local, 0.5));
    println!(
        "hello to completion, {RUNS} runs: in a warm worker p50 {r50:.0} µs (p99 {:.0}), \
         in-process p50 {l50:.0} µs (p99 {:.0}); worker/in-process {:.2}×",
        percentile(&mut remote, 0.99),
        percentile(&mut local, 0.99),
        r50 / l50
    );
}
