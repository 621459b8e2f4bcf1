//! A real `arcella daemon` process in a temporary directory, and the CLI
//! pointed at it.

use crate::support::Ran;
use std::ffi::OsStr;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A daemon under test; killed when dropped.
pub struct Daemon {
    pub dir: tempfile::TempDir,
    child: Option<Child>,
    how: Launch,
}

/// How a daemon is started, beyond its arcella.toml.
#[derive(Debug, Default)]
struct Launch {
    /// Where the data directory is, if not inside `dir`.
    data: Option<PathBuf>,
    /// `ulimit -v` (KiB) the daemon runs under, if any.
    address_space_kib: Option<u64>,
    /// `ulimit -n` the daemon runs under, if any.
    open_files: Option<u64>,
    /// MiB of a tmpfs the daemon gets at `disk()`, in a mount namespace of
    /// its own, holding its data directory and a directory to grant.
    small_disk_mib: Option<u64>,
    /// The uid (and gid) the daemon runs as, if not the test's; its
    /// directory is given to that user first.
    user: Option<u32>,
}

impl Daemon {
    /// Starts a daemon on a fresh data directory and waits until it serves.
    pub fn start() -> Self {
        Self::start_with_config("")
    }

    /// Like [`Daemon::start`], with `config` as its arcella.toml.
    pub fn start_with_config(config: &str) -> Self {
        Self::launch(config, Launch::default())
    }

    /// Like [`Daemon::start_with_config`], under `ulimit -v KIB` (set by
    /// `sh`, which then execs the daemon: the limit is inherited by workers).
    #[cfg_attr(not(feature = "compiler"), allow(dead_code))]
    pub fn start_with_address_space(config: &str, kib: u64) -> Self {
        let how = Launch {
            address_space_kib: Some(kib),
            ..Launch::default()
        };
        Self::launch(config, how)
    }

    /// Like [`Daemon::start`], under `ulimit -n open_files` (soft and hard).
    pub fn start_with_open_files(open_files: u64) -> Self {
        let how = Launch {
            open_files: Some(open_files),
            ..Launch::default()
        };
        Self::launch("", how)
    }

    /// Like [`Daemon::start`], with its data directory on a file system of
    /// `mib` MiB (a tmpfs in a mount namespace of the daemon's, so that a
    /// guest can fill it). `disk()/grant` is there to grant, writable by
    /// anyone. The test itself does not see inside.
    pub fn start_on_small_disk(mib: u64) -> Self {
        let how = Launch {
            small_disk_mib: Some(mib),
            ..Launch::default()
        };
        Self::launch("", how)
    }

    /// Where [`Daemon::start_on_small_disk`] mounts its file system.
    pub fn disk(&self) -> PathBuf {
        self.dir.path().join("disk")
    }

    /// Like [`Daemon::start`], as `uid` (gid the same, no supplementary
    /// groups), as the packaged unit runs it: its directory is given to
    /// that user first. The tests run as root to do this.
    pub fn start_as_user(uid: u32) -> Self {
        Self::start_as_user_with_config(uid, "")
    }

    /// Like [`Daemon::start_as_user`], with `config` as its arcella.toml.
    pub fn start_as_user_with_config(uid: u32, config: &str) -> Self {
        let how = Launch {
            user: Some(uid),
            ..Launch::default()
        };
        Self::launch(config, how)
    }

    /// Writes `config`, starts the daemon as `how` says and waits until it
    /// serves.
    fn launch(config: &str, mut how: Launch) -> Self {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "arcella.toml", config);
        if how.small_disk_mib.is_some() {
            let disk = dir.path().join("disk");
            std::fs::create_dir(&disk).unwrap();
            how.data = Some(disk.join("data"));
        }
        if let Some(uid) = how.user {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(uid)).unwrap();
        }
        let mut daemon = Self { dir, child: None, how };
        daemon.spawn();
        daemon
    }

    /// The daemon's process id (of `sh`, which exec'd into the daemon).
    #[cfg_attr(not(feature = "compiler"), allow(dead_code))]
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the daemon runs").id()
    }

    /// Like [`Daemon::start`], with its data directory at `data`.
    pub fn start_with_data_dir(data: &Path) -> Self {
        let how = Launch {
            data: Some(data.to_owned()),
            ..Launch::default()
        };
        Self::launch("", how)
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("arcella.sock")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.how.data.clone().unwrap_or_else(|| self.dir.path().join("data"))
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("daemon.log")
    }

    /// (Re)starts the daemon process on the same data directory.
    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap();
        let binary = env!("CARGO_BIN_EXE_arcella");
        let ulimits: Vec<String> = [("-v", self.how.address_space_kib), ("-n", self.how.open_files)]
            .into_iter()
            .filter_map(|(flag, value)| Some(format!("ulimit {flag} {} && ", value?)))
            .collect();
        let mut command = if let Some(mib) = self.how.small_disk_mib {
            let disk = self.disk();
            let mut unshare = Command::new("unshare");
            unshare
                .args(["-m", "--propagation", "private", "/bin/sh", "-c"])
                .arg(format!(
                    "mount -t tmpfs -o size={mib}m arcella-test \"$1\" && mkdir \"$1/data\" \"$1/grant\" && \
                     chmod 777 \"$1/grant\" && shift && exec \"$@\""
                ))
                .arg("sh")
                .arg(disk)
                .arg(binary);
            unshare
        } else if ulimits.is_empty() {
            Command::new(binary)
        } else {
            let mut sh = Command::new("/bin/sh");
            sh.arg("-c")
                .arg(format!("{}exec \"$0\" \"$@\"", ulimits.concat()))
                .arg(binary);
            sh
        };
        if let Some(uid) = self.how.user {
            std::os::unix::process::CommandExt::uid(&mut command, uid);
            std::os::unix::process::CommandExt::gid(&mut command, uid);
        }
        let child = command
            .arg("daemon")
            .arg("--config")
            .arg(self.dir.path().join("arcella.toml"))
            .arg("--data-dir")
            .arg(self.data_dir())
            .arg("--socket")
            .arg(self.socket())
            .env_clear()
            .env("HOME", self.dir.path())
            .env("RUST_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("the daemon starts");
        self.child = Some(child);
        self.wait_until_serving();
    }

    fn wait_until_serving(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if UnixStream::connect(self.socket()).is_ok() {
                return;
            }
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                panic!("the daemon exited with {status}:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("the daemon did not serve within 20s:\n{}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// SIGKILL, as a power cut would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then wait; returns the exit code.
    pub fn terminate(&mut self) -> Option<i32> {
        self.stop_with("TERM")
    }

    /// Sends `signal` (`TERM`, `INT`), then waits; returns the exit code.
    pub fn stop_with(&mut self, signal: &str) -> Option<i32> {
        let mut child = self.child.take()?;
        send_signal(child.id(), signal);
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Some(status) = child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        panic!("the daemon did not stop within 15s of SIG{signal}:\n{}", self.log());
    }

    /// `arcella ARGS...` against this daemon.
    pub fn cli<I, S>(&self, args: I) -> Ran
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let out = Command::new(env!("CARGO_BIN_EXE_arcella"))
            .args(args)
            .env_clear()
            .env("ARCELLA_SOCKET", self.socket())
            .stdin(Stdio::null())
            .output()
            .expect("arcella starts");
        Ran {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Installs the ticker service and checks that it runs.
    pub fn install_running_ticker(&self) {
        self.install("ticker", Some(TICKER_COMPONENT), TICKER_SERVICE)
            .expect_code(0)
            .stdout_has(&["ticker 1.0.0 is running"]);
    }

    /// Installs a guest artifact with manifests written from the given text.
    pub fn install(&self, guest: &str, component: Option<&str>, deployment: &str) -> Ran {
        self.install_variant(guest, "native", component, deployment)
    }

    /// [`Daemon::install`] of the guest's artifact `label` (`native-fuel`…).
    pub fn install_variant(&self, guest: &str, label: &str, component: Option<&str>, deployment: &str) -> Ran {
        let dir = self.dir.path();
        let deployment_path = write(dir, &format!("{guest}-deployment.toml"), deployment);
        let artifact = crate::support::artifact(guest, label);
        let mut args = vec![
            "install".into(),
            artifact.into_os_string(),
            "--deployment".into(),
            deployment_path.into_os_string(),
        ];
        if let Some(component) = component {
            args.push("--component".into());
            args.push(write(dir, &format!("{guest}-component.toml"), component).into_os_string());
        }
        self.cli(args)
    }

    /// `arcella install ARTIFACT --component C --deployment D`.
    pub fn install_file(&self, artifact: &Path, component: &Path, deployment: &Path) -> Ran {
        self.cli([
            "install".as_ref(),
            artifact.as_os_str(),
            "--component".as_ref(),
            component.as_os_str(),
            "--deployment".as_ref(),
            deployment.as_os_str(),
        ])
    }

    /// `arcella update ID ARTIFACT --component C --deployment D`.
    pub fn update(&self, id: &str, artifact: &Path, component: &Path, deployment: &Path) -> Ran {
        self.cli([
            "update".as_ref(),
            id.as_ref(),
            artifact.as_os_str(),
            "--component".as_ref(),
            component.as_os_str(),
            "--deployment".as_ref(),
            deployment.as_os_str(),
        ])
    }

    /// Waits until the daemon's `[bridge]` has connected to its broker.
    pub fn wait_bridge_connected(&self, within: Duration) {
        let deadline = Instant::now() + within;
        while !self.log().contains("bridge: connected to") {
            assert!(Instant::now() < deadline, "the bridge never connected:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `arcella --json status ID` parsed, or `None` if it is not installed.
    pub fn status(&self, id: &str) -> Option<serde_json::Value> {
        let ran = self.cli(["--json", "status", id]);
        if ran.code != Some(0) {
            assert!(ran.stderr.contains("no module"), "status failed oddly: {}", ran.stderr);
            return None;
        }
        Some(serde_json::from_str(&ran.stdout).unwrap())
    }

    /// A module's guest stdout lines so far (`arcella logs`).
    pub fn guest_out(&self, module: &str) -> Vec<String> {
        self.cli(["logs", module])
            .stdout
            .lines()
            .filter_map(|l| l.trim_start().strip_prefix("out | ").map(str::to_owned))
            .collect()
    }

    /// Waits until the module's log (`arcella logs`: its output and the
    /// daemon's notes) contains `needle` (or panics after `within`);
    /// returns the log so far.
    pub fn wait_log(&self, module: &str, needle: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let logs = self.cli(["logs", module]).stdout;
            if logs.contains(needle) {
                return logs;
            }
            assert!(
                Instant::now() < deadline,
                "{module} never logged {needle:?}:\n{logs}\ndaemon:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Waits until the module's stdout has a line containing `needle`
    /// (or panics after `within`); returns the lines so far.
    pub fn wait_guest_out(&self, module: &str, needle: &str, within: Duration) -> Vec<String> {
        let deadline = Instant::now() + within;
        loop {
            let lines = self.guest_out(module);
            if lines.iter().any(|l| l.contains(needle)) {
                return lines;
            }
            assert!(
                Instant::now() < deadline,
                "{module} never printed {needle:?}; it printed {lines:#?}\nlogs:\n{}\ndaemon:\n{}",
                self.cli(["logs", module]).stdout,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Polls `status` until `check` holds (or panics after `within`).
    pub fn wait_for(
        &self,
        id: &str,
        within: Duration,
        what: &str,
        check: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + within;
        loop {
            let status = self.status(id);
            if let Some(status) = &status
                && check(status)
            {
                return status.clone();
            }
            if Instant::now() > deadline {
                panic!(
                    "{id} never became {what}; last status: {status:?}\ndaemon log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

pub fn send_signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

/// The module's state word in `status` JSON: "running", "stopped", …
pub fn state_name(status: &serde_json::Value) -> String {
    status["state"].as_str().unwrap_or_default().to_owned()
}

pub const TICKER_COMPONENT: &str = "name = \"ticker\"\nversion = \"1.0.0\"\n";
pub const TICKER_SERVICE: &str = "kind = \"service\"\nisolation = \"main\"\ntrusted = true\n";
