//! What the Debian package ships, checked as a user would meet it: the
//! config template with every commented block uncommented, and advice
//! that must work under the packaged (non-root) unit.

use crate::support::{Ran, arcella, code};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const NOBODY: u32 = 65534;

fn template() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/arcella.toml.in")).unwrap()
}

/// The template with `# [section]` and `# key = …` lines uncommented
/// (prose comments stay comments).
fn uncommented(text: &str) -> String {
    text.lines()
        .map(|line| match line.strip_prefix("# ") {
            Some(rest) if rest.starts_with('[') || rest.split_once(" = ").is_some_and(|(k, _)| is_key(k)) => {
                rest.to_owned()
            }
            _ => line.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_key(word: &str) -> bool {
    !word.is_empty() && word.chars().all(|c| c.is_ascii_lowercase() || c == '_')
}

/// `arcella daemon --config FILE --check` for `text`, as `uid` if given
/// (a world-readable directory then).
fn check(text: &str, uid: Option<u32>) -> Ran {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let file: PathBuf = dir.path().join("arcella.toml");
    std::fs::write(&file, text).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_arcella"));
    command
        .args(["daemon", "--check", "--config"])
        .arg(&file)
        .env_clear()
        .stdin(Stdio::null());
    if let Some(uid) = uid {
        command.uid(uid).gid(uid);
    }
    let out = command.output().unwrap();
    Ran {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn group_exists(name: &str) -> bool {
    std::fs::read_to_string("/etc/group").is_ok_and(|t| t.lines().any(|l| l.split(':').next() == Some(name)))
}

#[test]
fn the_config_template_with_every_block_uncommented_passes_check() {
    for board in ["x86_64-generic", "rpi4-aarch64", "armv7-hf"] {
        let text = uncommented(&template().replace("@BOARD@", board));
        for block in ["\n[access]\n", "\n[mqtt]\n", "\nsocket_group = ", "\ntrusted_keys = "] {
            assert!(text.contains(block), "the template lost {block:?}:\n{text}");
        }
        // The group is the package's (postinst makes it); on a machine
        // without it, root's stands in.
        assert!(text.contains("\nsocket_group = \"arcella\"\n"), "{text}");
        let text = match group_exists("arcella") {
            true => text,
            false => text.replace("socket_group = \"arcella\"", "socket_group = \"root\""),
        };
        check(&text, None)
            .expect_code(0)
            .stdout_has(&["configuration ok", &format!("board:       {board}")]);
    }
}

#[test]
fn a_socket_group_the_daemon_is_not_in_is_refused_by_check_before_it_starts() {
    // As `nobody`, like the packaged unit's non-root user: its own group
    // can be given, another cannot.
    check(&format!("[access]\nsocket_gid = {NOBODY}\n"), Some(NOBODY)).expect_code(0);
    check("[access]\nsocket_gid = 0\n", Some(NOBODY))
        .expect_code(code::FAILURE)
        .stderr_has(&["socket_gid = 0", "is not in that group", "socket_group = \"arcella\""]);
    check("[access]\nsocket_group = \"no-such-group-19\"\n", None)
        .expect_code(code::FAILURE)
        .stderr_has(&["no-such-group-19", "no such group"]);
    arcella(["--json", "daemon", "--check", "--config", "/nonexistent/arcella.toml"]).expect_code(code::FAILURE);
}
