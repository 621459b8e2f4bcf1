//! Two daemons where there should be one: a second daemon on a data
//! directory in use is refused by name, and a daemon that stops never
//! takes another daemon's socket with it.

use super::harness::*;
use crate::support::Ran;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `arcella daemon` with `data` and `socket`, its config and log in `dir`
/// (also its working directory).
fn spawn_daemon(dir: &Path, data: &Path, socket: &Path) -> Child {
    write(dir, "arcella.toml", "");
    Command::new(env!("CARGO_BIN_EXE_arcella"))
        .current_dir(dir)
        .arg("daemon")
        .arg("--config")
        .arg(dir.join("arcella.toml"))
        .arg("--data-dir")
        .arg(data)
        .arg("--socket")
        .arg(socket)
        .env_clear()
        .env("HOME", dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the daemon starts")
}

/// Waits for a daemon that should stop by itself; kills it after 20 s.
fn exits(mut child: Child) -> Ran {
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "the second daemon kept running:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    Ran {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn a_second_daemon_on_a_data_dir_in_use_is_refused_with_the_first_ones_pid() {
    let mut first = Daemon::start();
    let data = first.data_dir();
    let other = tempfile::tempdir().unwrap();
    let socket = other.path().join("second.sock");
    let second = exits(spawn_daemon(other.path(), &data, &socket));
    second.no_panic().expect_code(1).stderr_has(&[
        "another arcella daemon",
        &format!("pid {}", first.pid()),
        &data.display().to_string(),
        "--data-dir",
    ]);
    assert!(!socket.exists(), "the refused daemon bound its socket");
    // The first one noticed nothing.
    first.cli(["list"]).expect_code(0);
    assert!(first.socket().exists());
    // Once the first has stopped, the directory is free again (the lock
    // went with the process; the lock file may stay).
    assert_eq!(first.terminate(), Some(0));
    let mut third = Daemon::start_with_data_dir(&data);
    third.cli(["list"]).expect_code(0);
    assert_eq!(third.terminate(), Some(0));
}

#[test]
fn a_socket_named_relative_to_the_working_directory_is_bound_there() {
    // Was: "cannot create the socket directory : No such file or directory"
    // (the parent of `arcella.sock` is "").
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = spawn_daemon(dir.path(), Path::new("data"), Path::new("here.sock"));
    let socket = dir.path().join("here.sock");
    let deadline = Instant::now() + Duration::from_secs(20);
    while UnixStream::connect(&socket).is_err() {
        if let Some(status) = daemon.try_wait().unwrap() {
            let out = daemon.wait_with_output().unwrap();
            panic!("the daemon exited ({status}): {}", String::from_utf8_lossy(&out.stderr));
        }
        assert!(Instant::now() < deadline, "the daemon did not serve on ./here.sock");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        dir.path().join("data").is_dir(),
        "the relative data directory is not in the working directory"
    );
    let _ = daemon.kill();
    let _ = daemon.wait();
}

#[test]
fn a_stopping_daemon_used_to_delete_the_socket_another_daemon_had_taken_over() {
    let mut first = Daemon::start();
    let socket = first.socket();
    // The socket's path is taken over while the first daemon still runs
    // (as when it is shutting down and no longer answers, or a cleaner
    // removed its file): a second daemon, on its own data directory,
    // finds no live socket there and binds its own.
    std::fs::remove_file(&socket).unwrap();
    let other = tempfile::tempdir().unwrap();
    let mut second = spawn_daemon(other.path(), &other.path().join("data"), &socket);
    let deadline = Instant::now() + Duration::from_secs(20);
    while UnixStream::connect(&socket).is_err() {
        assert!(second.try_wait().unwrap().is_none(), "the second daemon exited");
        assert!(Instant::now() < deadline, "the second daemon did not serve");
        std::thread::sleep(Duration::from_millis(20));
    }
    // (Once, in CI's device-build pass under the full suite's load, this
    // was Some(1); not reproduced in 15 runs, 12 of them under load: the
    // log says why if it happens again.)
    let code = first.terminate();
    assert_eq!(code, Some(0), "the first daemon's log:\n{}", first.log());
    assert!(socket.exists(), "the first daemon removed the second one's socket");
    first.cli(["list"]).expect_code(0);
    assert!(
        first.log().contains("no longer the socket this daemon bound"),
        "{}",
        first.log()
    );
    send_signal(second.id(), "TERM");
    let stopped = exits(second);
    assert_eq!(stopped.code, Some(0), "{}", stopped.stderr);
    assert!(!socket.exists(), "a daemon removes its own socket when it stops");
}
