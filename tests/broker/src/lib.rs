//! A real mosquitto broker for the MQTT tests and benches: started on a
//! free loopback port with a config of its own (credentials, an ACL, TLS,
//! a message size limit, persistence), restartable on the same port,
//! stopped when dropped. Needs `mosquitto` and `mosquitto_passwd` (Debian:
//! the `mosquitto` package; `.ci/run` installs it).

#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod mirror_schema;

use std::fmt::Write as _;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// PEM files for a TLS listener.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Ask clients for a certificate signed by `ca`.
    pub require_client_cert: bool,
}

/// How the broker is set up.
#[derive(Debug, Clone, Default)]
pub struct BrokerConfig {
    /// `message_size_limit` in bytes (mosquitto refuses larger publishes).
    pub message_size_limit: Option<usize>,
    /// Keep retained messages and sessions across restarts.
    pub persistence: bool,
    /// Username/password pairs; anonymous clients are refused when set.
    pub users: Vec<(String, String)>,
    /// The text of an `acl_file`.
    pub acl: Option<String>,
    pub tls: Option<TlsFiles>,
    /// Publish `$SYS` statistics every second.
    pub sys_stats: bool,
    /// `set_tcp_nodelay true`: answers leave without waiting for an ACK.
    pub tcp_nodelay: bool,
}

/// A running mosquitto.
#[derive(Debug)]
pub struct Mosquitto {
    port: u16,
    config: PathBuf,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl Mosquitto {
    /// Anonymous, in memory, no limits.
    pub fn start() -> Self {
        Self::start_with(&BrokerConfig::default())
    }

    pub fn start_with(config: &BrokerConfig) -> Self {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("mosquitto.conf");
        std::fs::write(&file, render(config, port, dir.path())).unwrap();
        let mut broker = Self {
            port,
            config: file,
            child: None,
            dir,
        };
        broker.launch();
        broker
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `mqtt://127.0.0.1:PORT` (or `mqtts://localhost:PORT` with TLS,
    /// as the test certificates name `localhost`).
    pub fn url(&self) -> String {
        let text = std::fs::read_to_string(&self.config).unwrap();
        if text.contains("certfile") {
            format!("mqtts://localhost:{}", self.port)
        } else {
            format!("mqtt://127.0.0.1:{}", self.port)
        }
    }

    /// `mosquitto_pub` of one QoS 1 message, as a client outside Arcella.
    pub fn publish(&self, topic: &str, message: &str) {
        let status = Command::new("mosquitto_pub")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-q", "1"])
            .args(["-t", topic, "-m", message])
            .status()
            .expect("mosquitto_pub runs (Debian: mosquitto-clients)");
        assert!(status.success(), "mosquitto_pub -t {topic} failed");
    }

    /// `mosquitto_sub` on `filter` at QoS 1, as a client outside Arcella,
    /// until `count` messages or `secs` seconds; with `session`, in a
    /// persistent session of that client id.
    pub fn subscriber(&self, filter: &str, count: usize, secs: u32, session: Option<&str>) -> Subscriber {
        let mut command = Command::new("mosquitto_sub");
        command
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-q", "1", "-v"])
            .args(["-t", filter, "-C", &count.to_string(), "-W", &secs.to_string()]);
        if let Some(id) = session {
            command.args(["-c", "-i", id]);
        }
        let child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto_sub runs (Debian: mosquitto-clients)");
        Subscriber(child)
    }

    /// The broker's own folder (its config, password file, database).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Stops the broker (SIGTERM, so it saves its database).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while child.try_wait().unwrap().is_none() {
                if Instant::now() > deadline {
                    let _ = child.kill();
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// Starts it again on the same port with the same config.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    fn launch(&mut self) {
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&self.config)
            .stdout(Stdio::null())
            // Its log stays beside its config, for a test that fails.
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.dir.path().join("mosquitto.log"))
                    .map_or_else(|_| Stdio::null(), Stdio::from),
            )
            .spawn()
            .expect("mosquitto must be installed (apt-get install mosquitto)");
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut child = child;
        // Listening, and it is this mosquitto that listens (a broker that
        // lost the port to another process exits).
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("mosquitto exited ({status}) instead of listening on {}", self.port);
            }
            assert!(Instant::now() < deadline, "mosquitto did not listen on {}", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(20));
        if let Ok(Some(status)) = child.try_wait() {
            panic!("mosquitto exited ({status}): port {} was taken", self.port);
        }
        self.child = Some(child);
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn render(config: &BrokerConfig, port: u16, dir: &Path) -> String {
    let mut text = format!("per_listener_settings false\nlistener {port} 127.0.0.1\nlog_dest stderr\n");
    if let Some(limit) = config.message_size_limit {
        writeln!(text, "message_size_limit {limit}").unwrap();
    }
    if config.persistence {
        // mosquitto started as root drops to its own user, which must be
        // able to write its database here.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        writeln!(
            text,
            "persistence true\npersistence_location {}/\nautosave_interval 1",
            dir.display()
        )
        .unwrap();
    } else {
        text.push_str("persistence false\n");
    }
    if config.tcp_nodelay {
        text.push_str("set_tcp_nodelay true\n");
    }
    if config.sys_stats {
        text.push_str("sys_interval 1\n");
    }
    if config.users.is_empty() {
        text.push_str("allow_anonymous true\n");
    } else {
        let passwords = dir.join("passwords");
        std::fs::write(&passwords, "").unwrap();
        for (user, password) in &config.users {
            let status = Command::new("mosquitto_passwd")
                .arg("-b")
                .arg(&passwords)
                .arg(user)
                .arg(password)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("mosquitto_passwd must be installed (apt-get install mosquitto)");
            assert!(status.success(), "mosquitto_passwd failed");
        }
        writeln!(text, "allow_anonymous false\npassword_file {}", passwords.display()).unwrap();
    }
    if let Some(acl) = &config.acl {
        let file = dir.join("acl");
        std::fs::write(&file, acl).unwrap();
        writeln!(text, "acl_file {}", file.display()).unwrap();
    }
    if let Some(tls) = &config.tls {
        writeln!(
            text,
            "cafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate {}",
            tls.ca.display(),
            tls.cert.display(),
            tls.key.display(),
            tls.require_client_cert
        )
        .unwrap();
    }
    text
}

/// A running `mosquitto_sub` ([`Mosquitto::subscriber`]).
#[derive(Debug)]
pub struct Subscriber(Child);

impl Subscriber {
    /// Waits for it to end; what it received, one `topic payload` line
    /// per message.
    pub fn lines(self) -> Vec<String> {
        let out = self.0.wait_with_output().unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    }
}
