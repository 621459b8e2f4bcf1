//! `cargo bench --bench guests`: what each guest language costs (the table
//! of docs/guests.md), for the examples/<lang>-service projects the test
//! setup built with the pinned tools of scripts/guest-tools:
//!
//! - artifact: the component (.wasm) and its native artifact (.cwasm);
//! - build: `./build.sh` of the example into a scratch directory (Rust
//!   into a fresh target directory, so its dependencies count);
//! - compile: the component to a native artifact, in-process, as
//!   `arcella compile` does;
//! - start: `install` over the socket until the service's first log line
//!   (upload, store, load, instantiate, the guest's own start);
//! - RSS: the worker of a group holding 1, then 3 instances of the
//!   service (further = (RSS(3) - RSS(1)) / 2), from /proc.
//!
//! Not part of scripts/test: run it as `cargo bench --bench guests`.

// A bench that cannot set up should stop loudly, not report a figure.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod support;
use arcella_core::EngineProfile;
use arcella_core::artifact::compile::compile;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const LANGS: &[(&str, &str)] = &[
    ("rust", "rust_service"),
    ("c", "c_service"),
    ("python", "python_service"),
    ("js", "js_service"),
];
const FURTHER: usize = 2;

fn main() {
    if let Some(why) = arcella_test_programs::POLYGLOT_MISSING {
        panic!("{why}");
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("arcella.sock");
    let mut daemon = support::spawn_daemon(dir.path(), &socket);
    println!(
        "{:<8} {:>9} {:>9} {:>8} {:>8} {:>8} {:>10} {:>10}",
        "language", "wasm MB", "cwasm MB", "build s", "compile s", "start ms", "RSS 1 MiB", "RSS +1 MiB"
    );
    for (lang, guest) in LANGS {
        let wasm = arcella_test_programs::wasm(guest);
        let cwasm = arcella_test_programs::artifact(guest, "native");
        let build = time_build(repo, lang, dir.path());
        let bytes = std::fs::read(&wasm).unwrap();
        let began = Instant::now();
        compile(&EngineProfile::default(), &bytes, "bench.wasm").expect("compile");
        let compile_time = began.elapsed();
        let (start, rss_first, rss_further) = start_and_rss(&socket, lang, &cwasm, dir.path());
        println!(
            "{lang:<8} {:>9.1} {:>9.1} {:>8.1} {:>8.1} {:>8.0} {:>10.1} {:>10.1}",
            mib(size(&wasm)),
            mib(size(&cwasm)),
            build.as_secs_f64(),
            compile_time.as_secs_f64(),
            start.as_secs_f64() * 1e3,
            mib(rss_first),
            mib(rss_further),
        );
    }
    let _ = Command::new("kill").arg("-TERM").arg(daemon.id().to_string()).status();
    let _ = daemon.wait();
}

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// `examples/<lang>-service/build.sh` into `scratch`, timed.
fn time_build(repo: &Path, lang: &str, scratch: &Path) -> Duration {
    let tools = std::env::var_os("ARCELLA_GUEST_TOOLS")
        .map_or_else(|| repo.join("target/guest-tools"), PathBuf::from)
        .join("bin");
    let adapter = scratch.join("adapter.wasm");
    std::fs::write(
        &adapter,
        wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
    )
    .unwrap();
    let began = Instant::now();
    let status = Command::new(repo.join(format!("examples/{lang}-service/build.sh")))
        .env(
            "PATH",
            format!("{}:{}", tools.display(), std::env::var("PATH").unwrap()),
        )
        .env("OUT", scratch.join(format!("{lang}.wasm")))
        .env("BUILD", scratch.join(format!("{lang}-build")))
        .env("ADAPTER", &adapter)
        .env("CARGO_TARGET_DIR", scratch.join("rust-target"))
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "{lang} build");
    began.elapsed()
}

fn arcella(socket: &Path, args: &[&std::ffi::OsStr]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_arcella"))
        .arg("--socket")
        .arg(socket)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Installs instance `i` of the service in group `lang`, returning the
/// time until its first log line.
fn install(socket: &Path, lang: &str, cwasm: &Path, scratch: &Path, i: usize) -> Duration {
    let id = format!("{lang}-{i}");
    let component = scratch.join(format!("{id}-component.toml"));
    let deployment = scratch.join(format!("{id}-deployment.toml"));
    std::fs::write(&component, format!("name = \"{id}\"\nversion = \"1\"\n")).unwrap();
    std::fs::write(
        &deployment,
        format!(
            "kind = \"service\"\ngroup = \"{lang}\"\n[limits]\nmemory = \"64M\"\n\
             [capabilities.keyvalue]\nbuckets = [\"default\"]\n"
        ),
    )
    .unwrap();
    let began = Instant::now();
    arcella(
        socket,
        &[
            "install".as_ref(),
            cwasm.as_os_str(),
            "--component".as_ref(),
            component.as_os_str(),
            "--deployment".as_ref(),
            deployment.as_os_str(),
        ],
    );
    let deadline = began + Duration::from_secs(120);
    while !arcella(socket, &["logs".as_ref(), id.as_ref()]).contains("start 1") {
        assert!(Instant::now() < deadline, "{id} did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    began.elapsed()
}

fn worker_rss(socket: &Path, lang: &str) -> u64 {
    let status = arcella(
        socket,
        &["--json".as_ref(), "status".as_ref(), format!("{lang}-0").as_ref()],
    );
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    let pid = status["worker_pid"].as_u64().expect("worker_pid") as u32;
    std::thread::sleep(Duration::from_millis(500));
    arcella_core::sys::process::resident_bytes(pid).unwrap_or(0)
}

fn start_and_rss(socket: &Path, lang: &str, cwasm: &Path, scratch: &Path) -> (Duration, u64, u64) {
    let start = install(socket, lang, cwasm, scratch, 0);
    let first = worker_rss(socket, lang);
    for i in 1..=FURTHER {
        install(socket, lang, cwasm, scratch, i);
    }
    let all = worker_rss(socket, lang);
    (start, first, all.saturating_sub(first) / FURTHER as u64)
}
