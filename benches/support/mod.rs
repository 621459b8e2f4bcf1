//! What the benches share: a daemon process to measure, installs on it,
//! and percentiles.

// A bench that cannot set up should stop loudly, not report a figure.
#![allow(clippy::expect_used, dead_code)]

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Uploads `artifact` and installs it as module `id` (version 1) with
/// `deployment` as its deployment.toml.
pub fn install(client: &mut arcella_core::client::Client, artifact: &[u8], id: &str, deployment: &str) {
    use arcella_core::protocol::{InstallSpec, Request};
    let upload = client.upload(artifact).expect("upload");
    let spec = InstallSpec {
        upload,
        component_toml: Some(format!("name = \"{id}\"\nversion = \"1\"\n")),
        deployment_toml: Some(deployment.to_owned()),
    };
    client.call(Request::Install(spec)).expect("install");
}

/// The `arcella` the daemon benches measure: this build's (the release
/// host build, with the compiler), or the device build that
/// `ARCELLA_DEVICE=PATH` names (its `arcella-worker` beside it), as a
/// board would run it.
pub fn daemon_binary() -> PathBuf {
    std::env::var_os("ARCELLA_DEVICE").map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_arcella")), PathBuf::from)
}

/// `arcella daemon` on `dir/data` and `socket`, once it serves.
pub fn spawn_daemon(dir: &Path, socket: &Path) -> Child {
    spawn_daemon_with_config(dir, socket, "")
}

/// Like [`spawn_daemon`], with `config` as its arcella.toml.
pub fn spawn_daemon_with_config(dir: &Path, socket: &Path, config: &str) -> Child {
    let file = dir.join("arcella.toml");
    std::fs::write(&file, config).expect("config written");
    let child = Command::new(daemon_binary())
        .arg("daemon")
        .arg("--config")
        .arg(&file)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--socket")
        .arg(socket)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("daemon starts");
    let deadline = Instant::now() + Duration::from_secs(20);
    while UnixStream::connect(socket).is_err() {
        assert!(Instant::now() < deadline, "daemon did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

/// The `p` quantile (0..=1) of `samples`, in microseconds.
pub fn percentile(samples: &mut [Duration], p: f64) -> f64 {
    samples.sort();
    let i = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[i].as_secs_f64() * 1e6
}

/// One busy loop per CPU at the lowest priority (`nice -n 19`), killed on
/// drop. On a VM an idle vCPU halts, and waking a thread there costs the
/// hypervisor's 150–350 µs (`perf sched timehist` on the 2-core build
/// host); a board's cores wake in microseconds. With the loops no vCPU
/// halts, and any other thread preempts them at once: a figure measured
/// beside them is the daemon's own path.
pub struct BusyCpus(Vec<Child>);

impl BusyCpus {
    pub fn start() -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self(
            (0..cpus)
                .map(|_| {
                    Command::new("nice")
                        .args(["-n", "19", "sh", "-c", "while :; do :; done"])
                        .spawn()
                        .expect("nice sh")
                })
                .collect(),
        )
    }
}

impl Drop for BusyCpus {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
