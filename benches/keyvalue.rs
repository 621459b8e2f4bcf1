//! `cargo bench --bench keyvalue`: what a `wasi:keyvalue` call costs a
//! guest (the `kv_counter` guest's `bench` mode: N sets, then N gets of
//! 16-byte values, timed inside the guest), in the daemon's process and in
//! a worker (every call a host-call round trip to the daemon), against the
//! same redb operations called natively. A set is one fsync'd commit, so
//! its figure is mostly the disk's; a get shows the host-call overhead.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use arcella_core::EngineProfile;
use arcella_core::artifact::{ArtifactKind, ArtifactStore};
use arcella_core::daemon::workers::{RemoteRun, WorkerConfig, WorkerPool};
use arcella_core::engine::new_engine;
use arcella_core::host::HostServices;
use arcella_core::host::keyvalue::backend::{KvGrant, Served};
use arcella_core::host::keyvalue::store::ModuleStore;
use arcella_core::protocol::host_call::KvRequest;
use arcella_core::protocol::worker::InstanceSpec;
use arcella_core::run::{self, Grants, Invocation, Limits, LogBook, Output};
use arcella_test_programs::artifact;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

const N: u32 = 300;
const GUEST: &str = "kv_counter_p2";

fn services(dir: &Path, name: &str) -> HostServices {
    let store = ModuleStore::open(&dir.join(format!("{name}.redb")), name).expect("store");
    HostServices {
        keyvalue: Some(Arc::new(Served {
            store: Arc::new(store),
            grant: KvGrant {
                buckets: vec!["default".into()],
                quota: 1 << 30,
            },
            denials: None,
        })),
        ..HostServices::default()
    }
}

fn grants() -> Grants {
    Grants {
        args: vec!["kv".into(), "bench".into(), N.to_string()],
        ..Grants::default()
    }
}

/// The guest's `bench` line: (set ns, get ns).
fn figures(book: &LogBook) -> (f64, f64) {
    let line = book
        .tail(0)
        .into_iter()
        .find_map(|l| l.text.strip_prefix("bench ").map(str::to_owned))
        .unwrap_or_else(|| panic!("no bench line in {:?}", book.tail(0)));
    let words: Vec<&str> = line.split_whitespace().collect();
    (words[1].parse().unwrap(), words[3].parse().unwrap())
}

fn native(dir: &Path) -> (f64, f64) {
    let store = ModuleStore::open(&dir.join("native.redb"), "native").expect("store");
    let began = Instant::now();
    for i in 0..N {
        let set = KvRequest::Set {
            bucket: "default".into(),
            key: format!("bench/{i}"),
            value: b"0123456789abcdef".to_vec(),
        };
        store.apply(set, 1 << 30).expect("set");
    }
    let set = began.elapsed().as_nanos() as f64 / f64::from(N);
    let began = Instant::now();
    for i in 0..N {
        let get = KvRequest::Get {
            bucket: "default".into(),
            key: format!("bench/{i}"),
        };
        store.apply(get, 1 << 30).expect("get");
    }
    let get = began.elapsed().as_nanos() as f64 / f64::from(N);
    (set, get)
}

fn main() {
    let data = tempfile::tempdir().expect("tempdir");
    let state = tempfile::tempdir_in(".").expect("state dir on the repository's disk");
    let profile = EngineProfile::default();
    let store = ArtifactStore::open(data.path()).expect("store");
    let bytes = std::fs::read(artifact(GUEST, "native")).expect("artifact");
    let id = store.put_bytes(&bytes, Path::new(GUEST)).expect("put");
    let executor = Arc::new(smol::Executor::new());
    let config = WorkerConfig {
        binary: Some(env!("CARGO_BIN_EXE_arcella-worker").into()),
        ..WorkerConfig::default()
    };
    let pool = WorkerPool::new(&config, &profile, executor.clone(), None, Vec::new(), None);
    let run = executor.run(async {
        println!("arcella key-value bench ({N} sets then {N} gets of 16-byte values)\n");
        let (set, get) = native(state.path());
        println!(
            "native redb call:      set {:>9.1} µs   get {:>6.2} µs",
            set / 1e3,
            get / 1e3
        );

        let engine = new_engine(&profile).expect("engine");
        let program = store.load(&engine, &profile, &id).expect("load");
        let book = LogBook::new("kv", None);
        let output = Output::Capture(book.clone());
        let host = services(state.path(), "inproc");
        let limits = Limits::default();
        let grants = grants();
        let invocation = Invocation {
            name: "kv",
            program: &program,
            grants: &grants,
            limits: &limits,
            profile: &profile,
            output: &output,
            entrypoint: None,
            stop: None,
            health: None,
            host: &host,
            provide: None,
            usage: None,
        };
        assert_eq!(run::run(&invocation).await.expect("runs"), 0);
        let (set, get) = figures(&book);
        println!(
            "guest, in-process:     set {:>9.1} µs   get {:>6.2} µs",
            set / 1e3,
            get / 1e3
        );

        let book = LogBook::new("kv", None);
        let (_, stop) = async_channel::bounded(1);
        let request = RemoteRun {
            group: "bench".into(),
            spec: InstanceSpec {
                name: "kv".into(),
                kind: ArtifactKind::Component,
                grants: grants.clone(),
                limits: Limits::default(),
                entrypoint: None,
                provider_instances: None,
            },
            code: store.open_code(&id).expect("code"),
            book: book.clone(),
            stop,
            on_started: Box::new(|_| {}),
            health: None,
            host: services(state.path(), "worker"),
            config_changed: async_channel::bounded(1).1,
            provide: None,
        };
        assert_eq!(pool.run(request).await.expect("runs"), 0);
        let (set, get) = figures(&book);
        println!(
            "guest, in a worker:    set {:>9.1} µs   get {:>6.2} µs",
            set / 1e3,
            get / 1e3
        );
        pool.shutdown().await;
    });
    smol::block_on(async_compat::Compat::new(run));
}
