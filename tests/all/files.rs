//! Grants: directories read-write, read-only, none, and escape attempts;
//! sockets, which are never granted.

use crate::support::*;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

fn grant(dir: &Path, suffix: &str) -> String {
    format!("{}::/data{suffix}", dir.display())
}

#[test]
fn a_granted_directory_is_readable_and_writable() {
    for guest in ["files_p1", "files_p2"] {
        for target in TARGETS {
            let dir = tempfile::tempdir().unwrap();
            fs::write(dir.path().join("in.txt"), "from the host\n").unwrap();
            run_guest(guest, target, &["--dir", &grant(dir.path(), ""), "--", "write-read"])
                .expect_code(0)
                .stdout_has(&["read: from the host", "wrote /data/out.txt"]);
            assert_eq!(
                fs::read_to_string(dir.path().join("out.txt")).unwrap(),
                "written by the guest\n"
            );
        }
    }
}

#[test]
fn a_read_only_grant_refuses_writes() {
    for guest in ["files_p1", "files_p2"] {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("in.txt"), "ro\n").unwrap();
        run_guest(
            guest,
            "native",
            &["--dir", &grant(dir.path(), ":ro"), "--", "write-read"],
        )
        .expect_code(guest_exit(guest, 4))
        .stdout_has(&["read: ro", "write refused"]);
        assert!(
            !dir.path().join("out.txt").exists(),
            "{guest} wrote through a read-only grant"
        );
    }
}

#[test]
fn without_a_grant_no_file_is_reachable() {
    for guest in ["files_p1", "files_p2"] {
        run_guest(guest, "native", &["--", "write-read"])
            .expect_code(guest_exit(guest, 5))
            .stdout_has(&["read failed"]);
    }
}

#[test]
fn escapes_from_a_granted_directory_fail() {
    for guest in ["files_p1", "files_p2"] {
        for target in TARGETS {
            let root = tempfile::tempdir().unwrap();
            let data = root.path().join("data");
            fs::create_dir(&data).unwrap();
            fs::write(root.path().join("outside.txt"), "secret").unwrap();
            symlink("..", data.join("link-out")).unwrap();
            symlink("../outside.txt", data.join("link-to-outside-file")).unwrap();

            let ran = run_guest(guest, target, &["--dir", &grant(&data, ""), "--", "escape"]);
            ran.expect_code(0);
            assert!(!ran.stdout.contains("ESCAPED"), "{guest}/{target}:\n{}", ran.stdout);
            assert_eq!(ran.stdout.matches("blocked: ").count(), 8, "{}", ran.stdout);
            assert!(
                !root.path().join("planted.txt").exists(),
                "{guest}/{target} wrote outside its grant"
            );
        }
    }
}

#[test]
fn a_missing_granted_directory_is_named() {
    run_guest("hello_p1", "native", &["--dir", "/no/such/dir::/data"])
        .expect_code(code::CANNOT_RUN)
        .stderr_has(&["/no/such/dir", "cannot be opened"]);
}

#[test]
fn a_malformed_grant_is_a_usage_error() {
    run_guest("hello_p1", "native", &["--dir", "/tmp:/data"])
        .expect_code(2)
        .stderr_has(&["HOST::GUEST"]);
    run_guest("hello_p1", "native", &["--env", "NOEQUALS"])
        .expect_code(2)
        .stderr_has(&["KEY=VALUE"]);
}

#[test]
fn no_socket_is_opened_without_a_grant() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    for guest in ["net_p1", "net_p2"] {
        for target in TARGETS {
            let ran = run_guest(guest, target, &["--", &addr]);
            ran.expect_code(0).stdout_has(&["blocked: connect"]);
            assert!(listener.accept().is_err(), "{guest}/{target} reached the listener");
        }
    }
}
