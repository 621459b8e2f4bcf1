//! Running the `arcella` binary and reading what it did.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub use arcella_test_programs::{TARGETS, artifact, wasm};

/// Exit codes from src/exit.rs, restated so a change there fails a test.
pub mod code {
    pub const FAILURE: i32 = 1;
    pub const CANNOT_RUN: i32 = 126;
    pub const TRAP: i32 = 200;
    pub const FUEL: i32 = 201;
    pub const MEMORY: i32 = 202;
    pub const STACK: i32 = 203;
    pub const TIMEOUT: i32 = 204;
}

/// The exit code a guest's `exit(code)` produces: preview-1 keeps the code;
/// preview-2's `wasi:cli/exit` only carries success or failure, so every
/// non-zero code of a component (`_p2`) arrives as 1.
pub fn guest_exit(guest: &str, code: i32) -> i32 {
    if guest.ends_with("_p2") && code != 0 { 1 } else { code }
}

/// What one `arcella` process did.
#[derive(Debug)]
pub struct Ran {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    /// Asserts the exit code, showing the output when it differs.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(code),
            "unexpected exit code\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// Asserts that stderr mentions every one of `needles`.
    #[track_caller]
    pub fn stderr_has(&self, needles: &[&str]) -> &Self {
        for needle in needles {
            assert!(
                self.stderr.contains(needle),
                "stderr lacks {needle:?}:\n{}",
                self.stderr
            );
        }
        self
    }

    /// Asserts that stdout mentions every one of `needles`.
    #[track_caller]
    pub fn stdout_has(&self, needles: &[&str]) -> &Self {
        for needle in needles {
            assert!(
                self.stdout.contains(needle),
                "stdout lacks {needle:?}:\n{}",
                self.stdout
            );
        }
        self
    }

    /// Asserts that nothing panicked.
    #[track_caller]
    pub fn no_panic(&self) -> &Self {
        assert!(!self.stderr.contains("panicked"), "arcella panicked:\n{}", self.stderr);
        self
    }
}

/// Runs `arcella ARGS...` with an empty environment (so nothing leaks into
/// guests by accident) and no stdin.
pub fn arcella<I, S>(args: I) -> Ran
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    arcella_in(None, args)
}

/// Like [`arcella`], in the working directory `dir`.
pub fn arcella_in<I, S>(dir: Option<&Path>, args: I) -> Ran
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_arcella"));
    cmd.args(args);
    if let Some(dir) = dir {
        cmd.current_dir(dir);
    }
    ran(cmd)
}

/// Like [`arcella`], under `ulimit -v KIB` (set by `sh`, which then execs it).
pub fn arcella_under_ulimit_v<I, S>(kib: u64, args: I) -> Ran
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(format!("ulimit -v {kib} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_arcella"))
        .args(args);
    ran(cmd)
}

fn ran(mut cmd: Command) -> Ran {
    cmd.env_clear().stdin(Stdio::null());
    let out = cmd.output().expect("arcella starts");
    Ran {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `arcella run <guest artifact for target> EXTRA...`
pub fn run_guest(guest: &str, target: &str, extra: &[&str]) -> Ran {
    let path = artifact(guest, target);
    let mut args: Vec<&OsStr> = vec![OsStr::new("run"), path.as_os_str()];
    args.extend(extra.iter().map(OsStr::new));
    arcella(args)
}

/// Every file under `dir`, at any depth.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}
