//! Boards: `board = "NAME"` in arcella.toml, `arcella compile --board`, and
//! a module compiled for a board running on a daemon of that board.

use super::harness::*;
use crate::support::*;
use arcella_core::board::Board;
use std::path::{Path, PathBuf};

pub const BOARDS: [&str; 4] = ["armv7-hf", "rpi4-aarch64", "small-128m", "x86_64-generic"];

pub fn boards_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("board-configs")
}

fn board_config(board: &str) -> String {
    format!("board = \"{board}\"\nboards_dir = \"{}\"\n", boards_dir().display())
}

/// The value after `key:` on the line that starts with it.
fn field(text: &str, key: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .unwrap_or_else(|| panic!("no `{key}:` line in:\n{text}"))
        .trim()
        .to_owned()
}

/// `arcella daemon --config FILE --check` for a config naming `board`.
fn check_board(dir: &Path, board: &str) -> Ran {
    let config = write(dir, &format!("{board}.arcella.toml"), &board_config(board));
    arcella([
        "daemon".as_ref(),
        "--config".as_ref(),
        config.as_os_str(),
        "--check".as_ref(),
    ])
}

#[test]
fn info_shows_the_board_and_its_engine() {
    let board = Board::load(&boards_dir().join("x86_64-generic.toml")).unwrap();
    let fingerprint = arcella_core::EngineFingerprint::of(&board.device_profile()).to_string();
    let daemon = Daemon::start_with_config(&board_config("x86_64-generic"));
    daemon
        .cli(["info"])
        .expect_code(0)
        .stdout_has(&["board:       x86_64-generic", &format!("engine:      {fingerprint}")]);
    // The device reports both fuel variants it accepts.
    let metered = arcella_core::EngineFingerprint::of(&board.device_profile().with_fuel(true)).to_string();
    daemon
        .cli(["info"])
        .expect_code(0)
        .stdout_has(&[&format!("{fingerprint}, with fuel metering {metered}")]);
    assert_ne!(fingerprint, metered);
}

#[test]
fn every_board_checks_with_the_fingerprint_its_file_implies() {
    let dir = tempfile::tempdir().unwrap();
    for board in BOARDS {
        let file = Board::load(&boards_dir().join(format!("{board}.toml"))).unwrap();
        let expected = arcella_core::EngineFingerprint::of(&file.device_profile()).to_string();
        let ran = check_board(dir.path(), board);
        let out = &ran.expect_code(0).stdout;
        assert_eq!(field(out, "board"), board);
        let engine = field(out, "engine");
        assert!(
            engine.starts_with(&format!("{expected}, with fuel metering ")),
            "{board}: {engine}"
        );
        assert_eq!(field(out, "data dir"), "/var/lib/arcella", "{board}: the board's path");
    }
}

#[test]
fn a_bad_board_stops_the_daemon_with_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(boards_dir().join("small-128m.toml"))
        .unwrap()
        .replace("ram = ", "rma = \"1G\"\nram = ");
    write(dir.path(), "small-128m.toml", &text);
    let config = write(dir.path(), "arcella.toml", "board = \"small-128m.toml\"\n");
    arcella([
        "daemon".as_ref(),
        "--config".as_ref(),
        config.as_os_str(),
        "--check".as_ref(),
    ])
    .expect_code(code::FAILURE)
    .stderr_has(&["arcella.toml: `board`:", "small-128m.toml:", "rma"]);
    let config = write(dir.path(), "other.toml", "board = \"rpi9\"\n");
    arcella([
        "daemon".as_ref(),
        "--config".as_ref(),
        config.as_os_str(),
        "--check".as_ref(),
    ])
    .expect_code(code::FAILURE)
    .stderr_has(&["no board `rpi9`", "/usr/share/arcella/boards"]);
}

#[cfg(feature = "compiler")]
mod compile {
    use super::*;

    pub fn ticker_wat() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/ticker/ticker.wat")
    }

    pub fn compile_for(board: &str, output: &Path) -> Ran {
        arcella([
            "compile".as_ref(),
            ticker_wat().as_os_str(),
            "-o".as_ref(),
            output.as_os_str(),
            "--board".as_ref(),
            board.as_ref(),
            "--boards-dir".as_ref(),
            boards_dir().as_os_str(),
        ])
    }

    #[test]
    fn each_board_compiles_with_the_fingerprint_its_device_computes() {
        let dir = tempfile::tempdir().unwrap();
        let mut seen = Vec::new();
        for board in BOARDS {
            let out = dir.path().join(format!("ticker.{board}.cwasm"));
            compile_for(board, &out)
                .expect_code(0)
                .stderr_has(&[&format!("board {board}:")]);
            let inspected = arcella(["inspect".as_ref(), out.as_os_str()]);
            let artifact = field(&inspected.expect_code(0).stdout, "fingerprint");
            let device = field(&check_board(dir.path(), board).expect_code(0).stdout, "engine");
            assert!(
                device.starts_with(&format!("{artifact}, with fuel metering ")),
                "{board}: {device}"
            );
            seen.push(artifact);
        }
        assert!(seen[0].contains("/pulley32/"), "armv7-hf: {}", seen[0]);
        assert!(
            seen[1].contains("/aarch64-unknown-linux-gnu/"),
            "rpi4-aarch64: {}",
            seen[1]
        );
        assert_ne!(seen[1], seen[2], "rpi4 and small-128m differ in engine settings");
    }

    #[test]
    fn compile_refuses_unknown_boards_and_board_with_target() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("x.cwasm");
        compile_for("rpi9", &out)
            .expect_code(code::FAILURE)
            .stderr_has(&["no board `rpi9`", &boards_dir().display().to_string()]);
        arcella([
            "compile".as_ref(),
            ticker_wat().as_os_str(),
            "--board".as_ref(),
            "rpi4-aarch64".as_ref(),
            "--target".as_ref(),
            "pulley64".as_ref(),
        ])
        .expect_code(2)
        .stderr_has(&["cannot be used with"]);
        assert!(!out.exists());
    }

    #[test]
    fn a_module_compiled_for_the_board_runs_in_process_and_in_a_worker() {
        let daemon = Daemon::start_with_config(&board_config("x86_64-generic"));
        let dir = daemon.dir.path();
        let artifact = dir.join("ticker.cwasm");
        compile_for("x86_64-generic", &artifact).expect_code(0);
        let install = |name: &str, deployment: &str| {
            let component = write(
                dir,
                &format!("{name}-c.toml"),
                &format!("name = \"{name}\"\nversion = \"1.0.0\"\n"),
            );
            let deployment = write(dir, &format!("{name}-d.toml"), deployment);
            daemon.install_file(&artifact, &component, &deployment)
        };
        install("trusted", TICKER_SERVICE).expect_code(0);
        install("untrusted", "kind = \"service\"\nisolation = \"worker\"\n").expect_code(0);
        // A worker module shows `running` as soon as it is launched; its
        // worker's pid comes with the worker's `Started`.
        for id in ["trusted", "untrusted"] {
            daemon.wait_for(id, std::time::Duration::from_secs(15), "running", |s| {
                state_name(s) == "running" && (id == "trusted" || s["worker_pid"].is_u64())
            });
        }
        let status = daemon.status("untrusted").unwrap();
        assert!(status["worker_pid"].is_u64(), "{status}");

        // An artifact for another engine (here: pulley64 bytecode) does not
        // load on this board. (The built-in defaults are this board's on an
        // x86_64 host: wasmtime's 4 GiB reservations, no fuel.)
        let plain = dir.join("plain.cwasm");
        arcella([
            "compile".as_ref(),
            ticker_wat().as_os_str(),
            "-o".as_ref(),
            plain.as_os_str(),
            "--target".as_ref(),
            "pulley64".as_ref(),
        ])
        .expect_code(0);
        let component = write(dir, "p-c.toml", "name = \"plain\"\nversion = \"1.0.0\"\n");
        let deployment = write(dir, "p-d.toml", TICKER_SERVICE);
        daemon
            .install_file(&plain, &component, &deployment)
            .expect_code(code::FAILURE)
            .stderr_has(&["--board"]);
    }
}

/// Boards with small reservations hold within a 256 MiB address space
/// (`ulimit -v 262144`, inherited by workers); boards with wasmtime's 4 GiB
/// reservations run their modules in-process and in workers (whose
/// RLIMIT_DATA does not count reserved, inaccessible address space), and a
/// daemon of theirs refuses, at start, an address-space limit they cannot
/// fit. On this host: each board file is copied with this host's triple
/// (pulley32 becomes pulley64).
#[cfg(feature = "compiler")]
mod address_space {
    use super::compile::ticker_wat;
    use super::*;

    const LIMIT_KIB: u64 = 256 * 1024;

    /// `board`'s file, retargeted to this host, in `dir`.
    fn on_this_host(board: &str, dir: &Path) -> PathBuf {
        let text = std::fs::read_to_string(boards_dir().join(format!("{board}.toml"))).unwrap();
        let original = Board::parse(&text, board).unwrap();
        let text = text
            .replace(&original.triple, arcella_core::engine::HOST_TRIPLE)
            .replace("artifact = \"pulley32\"", "artifact = \"pulley64\"");
        write(dir, &format!("{board}.toml"), &text)
    }

    /// Runs the ticker, compiled for `file`'s board, as a trusted and a
    /// worker service for 1.5 s; returns the worker's pid.
    fn runs_the_ticker_both_ways(daemon: &Daemon, board: &str, file: &Path) -> u32 {
        let dir = daemon.dir.path();
        let artifact = dir.join("ticker.cwasm");
        arcella([
            "compile".as_ref(),
            ticker_wat().as_os_str(),
            "-o".as_ref(),
            artifact.as_os_str(),
            "--board".as_ref(),
            file.as_os_str(),
        ])
        .expect_code(0);
        for (name, deployment) in [
            ("trusted", TICKER_SERVICE),
            ("untrusted", "kind = \"service\"\nisolation = \"worker\"\n"),
        ] {
            let component = write(
                dir,
                &format!("{name}-c.toml"),
                &format!("name = \"{name}\"\nversion = \"1.0.0\"\n"),
            );
            let deployment = write(dir, &format!("{name}-d.toml"), deployment);
            daemon.install_file(&artifact, &component, &deployment).expect_code(0);
            daemon.wait_for(name, std::time::Duration::from_secs(15), "running", |s| {
                state_name(s) == "running" && (name == "trusted" || s["worker_pid"].is_u64())
            });
        }
        // Still running a moment later: nothing failed to map memory.
        std::thread::sleep(std::time::Duration::from_millis(1500));
        for name in ["trusted", "untrusted"] {
            let status = daemon.status(name).unwrap();
            assert_eq!(
                state_name(&status),
                "running",
                "{board}: {name}: {status}\n{}",
                daemon.log()
            );
            assert_eq!(status["restarts"].as_u64().unwrap_or(0), 0, "{board}: {name}: {status}");
        }
        daemon
            .cli(["info"])
            .expect_code(0)
            .stdout_has(&[&format!("board:       {board}")]);
        let status = daemon.status("untrusted").unwrap();
        status["worker_pid"].as_u64().unwrap() as u32
    }

    fn vm_size_kib(pid: u32) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmSize:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    #[test]
    fn small_reservation_boards_run_modules_under_ulimit_v_256m() {
        for board in ["small-128m", "armv7-hf"] {
            let boards = tempfile::tempdir().unwrap();
            let file = on_this_host(board, boards.path());
            let declared = Board::load(&file).unwrap().address_space;
            assert!(
                board != "small-128m" || declared == Some(LIMIT_KIB * 1024),
                "{board}: {declared:?}"
            );
            let daemon = Daemon::start_with_address_space(&format!("board = \"{}\"\n", file.display()), LIMIT_KIB);
            let limit = std::fs::read_to_string(format!("/proc/{}/limits", daemon.pid())).unwrap();
            assert!(
                limit
                    .lines()
                    .any(|l| l.starts_with("Max address space") && l.contains(&(LIMIT_KIB * 1024).to_string())),
                "{board}: the daemon is not under the limit:\n{limit}"
            );
            let worker = runs_the_ticker_both_ways(&daemon, board, &file);
            assert!(
                vm_size_kib(worker) < LIMIT_KIB,
                "{board}: the worker is under the limit too"
            );
        }
    }

    #[test]
    fn large_reservation_boards_run_modules_and_refuse_a_small_address_space() {
        for board in ["rpi4-aarch64", "x86_64-generic"] {
            let boards = tempfile::tempdir().unwrap();
            let file = on_this_host(board, boards.path());
            let config = format!("board = \"{}\"\n", file.display());
            let daemon = Daemon::start_with_config(&config);
            let worker = runs_the_ticker_both_ways(&daemon, board, &file);
            // The ticker's linear memory really has its 4 GiB reservation
            // (virtual only), in a worker whose RLIMIT_DATA is the board's
            // workers.memory (at most 256 MiB).
            assert!(
                vm_size_kib(worker) > 4 << 20,
                "{board}: worker VmSize {} KiB",
                vm_size_kib(worker)
            );
            drop(daemon);

            // Under `ulimit -v 262144` it would fail every module start with
            // an mmap error: it refuses to start and says what to do.
            let dir = tempfile::tempdir().unwrap();
            let config = write(dir.path(), "arcella.toml", &config);
            arcella_under_ulimit_v(
                LIMIT_KIB,
                [
                    "daemon".as_ref(),
                    "--check".as_ref(),
                    "--config".as_ref(),
                    config.as_os_str(),
                ],
            )
            .expect_code(code::FAILURE)
            .stderr_has(&["256 MiB of address space", "4 GiB", "small-128m", "memory_reservation"])
            .no_panic();
        }
    }
}
