//! Progress lines for big guests: drawn on a terminal (the CLI run under a
//! pseudo-terminal by util-linux `script`), and nothing of them when
//! stderr is a pipe, as scripts and these tests read it.

use super::harness::*;
use crate::support::arcella;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// Bytes of data in the module: enough for several progress updates
/// (64 KiB chunks), small enough to keep the test quick.
const DATA_LEN: usize = 3 << 20;

const COMPONENT: &str = "name = \"big\"\nversion = \"1.0\"\n";
const DEPLOYMENT: &str = "kind = \"command\"\nisolation = \"main\"\ntrusted = true\n[restart]\npolicy = \"never\"\n";

/// A core module with a 3 MiB data segment of noise (zeros would be left
/// out of the artifact's memory image), encoded by hand as `big.wasm`.
fn big_wasm(dir: &Path) -> PathBuf {
    fn leb(mut n: usize) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return out;
            }
            out.push(byte | 0x80);
        }
    }
    fn section(id: u8, body: &[u8]) -> Vec<u8> {
        [&[id][..], &leb(body.len()), body].concat()
    }
    let mut x: u32 = 0x1234_5678;
    let data: Vec<u8> = (0..DATA_LEN)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    let pages = leb(DATA_LEN / 65536 + 1);
    let module = [
        &b"\0asm\x01\0\0\0"[..],
        // () -> (); one function of it; one memory; exports; an empty body.
        &section(1, b"\x01\x60\x00\x00"),
        &section(3, b"\x01\x00"),
        &section(5, &[&[1, 0][..], &pages].concat()),
        &section(7, b"\x02\x06memory\x02\x00\x06_start\x00\x00"),
        &section(10, b"\x01\x02\x00\x0b"),
        // One active segment at offset 0: i32.const 0, end, the bytes.
        &section(11, &[&[1, 0, 0x41, 0, 0x0b][..], &leb(DATA_LEN), &data].concat()),
    ]
    .concat();
    let path = dir.join("big.wasm");
    std::fs::write(&path, module).unwrap();
    path
}

/// `big.wasm` and its artifact `big.cwasm`, compiled once (piped: the
/// compile must print no progress either).
fn big_artifact() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let wasm = big_wasm(dir.path());
        let cwasm = dir.path().join("big.cwasm");
        let ran = arcella([
            OsStr::new("compile"),
            wasm.as_os_str(),
            OsStr::new("-o"),
            cwasm.as_os_str(),
        ]);
        ran.expect_code(0);
        quiet(&ran.stderr, "compile");
        assert!(std::fs::metadata(&cwasm).unwrap().len() > DATA_LEN as u64);
        dir
    });
    dir.path()
}

/// Asserts that `stderr` holds nothing of a progress line.
#[track_caller]
fn quiet(stderr: &str, verb: &str) {
    for needle in ["\r", "uploading", "uploaded", "compiling", "%", "MiB/s"] {
        assert!(
            !stderr.contains(needle),
            "{verb} into a pipe printed {needle:?}:\n{stderr}"
        );
    }
}

/// Runs `arcella ARGS` under a pseudo-terminal; returns what it wrote
/// there (stdout and stderr together, as a terminal shows them).
fn on_a_terminal(args: &[&Path]) -> String {
    let mut line = shell_word(Path::new(env!("CARGO_BIN_EXE_arcella")));
    for arg in args {
        line.push(' ');
        line.push_str(&shell_word(arg));
    }
    let out = Command::new("script")
        .args(["-qfec", &line, "/dev/null"])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .stdin(Stdio::null())
        .output()
        .expect("util-linux `script` runs (Debian: bsdutils)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{line} failed under a terminal:\n{text}");
    text
}

/// The progress lines a terminal was shown: each redraw (split at `\r`)
/// that starts with `doing`, every one with `amount`, a percentage and a
/// rate, checked to be there; then a final line starting with `done` at
/// 100%, checked too. Returns the redraws.
#[track_caller]
fn progress_lines<'a>(shown: &'a str, doing: &str, done: &str, amount: &str) -> Vec<&'a str> {
    let drawn: Vec<&str> = shown.split('\r').filter(|l| l.starts_with(doing)).collect();
    assert!(!drawn.is_empty(), "no progress line:\n{shown:?}");
    assert!(
        drawn
            .iter()
            .all(|l| l.contains(amount) && l.contains('%') && l.contains("/s")),
        "{drawn:?}"
    );
    let last = shown
        .split('\r')
        .find(|l| l.starts_with(done))
        .unwrap_or_else(|| panic!("no final line:\n{shown:?}"));
    assert!(last.contains("100%"), "{last:?}");
    drawn
}

fn shell_word(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', "'\\''"))
}

#[test]
fn install_into_a_pipe_prints_no_progress() {
    let dir = big_artifact();
    let daemon = Daemon::start();
    let component = write(daemon.dir.path(), "component.toml", COMPONENT);
    let deployment = write(daemon.dir.path(), "deployment.toml", DEPLOYMENT);
    let ran = daemon.install_file(&dir.join("big.cwasm"), &component, &deployment);
    ran.expect_code(0).stdout_has(&["big"]);
    quiet(&ran.stderr, "install");
}

#[test]
fn compile_and_install_on_a_terminal_draw_progress_and_a_final_line() {
    let dir = big_artifact();
    let daemon = Daemon::start();
    let component = write(daemon.dir.path(), "component.toml", COMPONENT);
    let deployment = write(daemon.dir.path(), "deployment.toml", DEPLOYMENT);
    let again = dir.join("again.cwasm");
    let shown = on_a_terminal(&[Path::new("compile"), &dir.join("big.wasm"), Path::new("-o"), &again]);
    assert!(shown.contains("compiling big.wasm (3.0 MiB) … 0 s"), "{shown:?}");
    assert!(shown.contains("compiled big.wasm in "), "{shown:?}");
    let shown = on_a_terminal(&[
        Path::new("install"),
        &dir.join("big.cwasm"),
        Path::new("--component"),
        &component,
        Path::new("--deployment"),
        &deployment,
        Path::new("--socket"),
        &daemon.socket(),
    ]);
    // A line while it runs (the first chunk always draws), redrawn in
    // place, then the final one.
    let drawn = progress_lines(&shown, "uploading big.cwasm", "uploaded big.cwasm", " / 3.0 MiB  ");
    assert!(drawn[0].contains("64.0 KiB / "), "the first chunk draws: {drawn:?}");
    assert!(daemon.status("big").is_some(), "installed");
}

#[test]
fn fleet_deploy_on_a_terminal_draws_the_publish_progress_and_into_a_pipe_none() {
    let dir = big_artifact();
    let broker = arcella_test_broker::Mosquitto::start();
    let work = tempfile::tempdir().unwrap();
    let keys = work.path().join("fleet");
    arcella(["keygen", "--out", keys.to_str().unwrap()]).expect_code(0);
    let public = std::fs::read_to_string(work.path().join("fleet.pub")).unwrap();
    let daemon = Daemon::start_with_config(&format!(
        "[mqtt]\nurl = \"{}\"\ndevice = \"gw-big\"\ntrusted_keys = [\"{}\"]\n",
        broker.url(),
        public.trim()
    ));
    let component = write(work.path(), "component.toml", COMPONENT);
    // A worker's: the fleet may not place code in the daemon's process.
    let deployment = write(
        work.path(),
        "deployment.toml",
        "kind = \"command\"\n[restart]\npolicy = \"never\"\n",
    );
    let url = broker.url();
    let deploy = |to: &str| -> Vec<PathBuf> {
        ["fleet", "--broker", &url, "deploy", "--to-device", to]
            .iter()
            .map(PathBuf::from)
            .chain([
                dir.join("big.cwasm"),
                "--component".into(),
                component.clone(),
                "--deployment".into(),
                deployment.clone(),
                "--key".into(),
                work.path().join("fleet.key"),
                "--stopped".into(),
                "--timeout".into(),
                "60s".into(),
            ])
            .collect()
    };
    let args = deploy("gw-big");
    let args: Vec<&Path> = args.iter().map(PathBuf::as_path).collect();
    let shown = on_a_terminal(&args);
    // The artifact's chunks, as the broker acknowledges them: a line
    // redrawn in place, then the final one; then the device's outcome.
    progress_lines(&shown, "publishing big.cwasm", "published big.cwasm", " MiB  ");
    assert!(shown.contains("gw-big: healthy"), "{shown:?}");
    assert!(daemon.status("big").is_some(), "installed");
    // The same deploy into a pipe (to a device nobody runs: it times out
    // the same way on a terminal or not) prints no progress.
    let mut piped = deploy("gw-none");
    let at = piped.iter().position(|a| a == Path::new("60s")).unwrap();
    piped[at] = "2s".into();
    let ran = arcella(&piped);
    assert_ne!(ran.code, Some(0), "nobody answered for gw-none");
    quiet(&ran.stderr, "fleet deploy");
}
