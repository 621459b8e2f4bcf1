use super::*;
use crate::fingerprint::EngineFingerprint;

fn board_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../board-configs");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_board_file_parses_and_validates() {
    let files = board_files();
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    for wanted in ["armv7-hf", "rpi4-aarch64", "small-128m", "x86_64-generic"] {
        assert!(
            names.iter().any(|n| n == wanted),
            "board-configs/ lacks {wanted}.toml: {names:?}"
        );
    }
    for file in &files {
        let board = Board::load(file).unwrap_or_else(|e| panic!("{e}"));
        // What the board implies for a daemon parses as arcella.toml.
        let text = toml::to_string(&board.config_defaults()).unwrap();
        crate::daemon::config::DaemonConfig::parse(&text, "defaults")
            .unwrap_or_else(|e| panic!("{}: its config defaults are refused: {e}", file.display()));
    }
}

#[test]
fn compile_and_device_profiles_have_the_same_fingerprint() {
    for file in board_files() {
        let board = Board::load(&file).unwrap();
        let compile = EngineFingerprint::of(&board.compile_profile());
        let device = EngineFingerprint::of(&board.device_profile());
        assert_eq!(compile, device, "{}", file.display());
        if board.artifact == ArtifactTarget::Native {
            assert_eq!(compile.target, board.triple);
        } else {
            assert_eq!(compile.target, board.artifact.to_string());
        }
    }
}

#[test]
fn armv7_runs_pulley32_and_small_boards_reserve_little() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../board-configs");
    let armv7 = Board::load(&dir.join("armv7-hf.toml")).unwrap();
    assert_eq!(armv7.artifact, ArtifactTarget::Pulley32);
    let small = Board::load(&dir.join("small-128m.toml")).unwrap();
    assert_eq!(small.ram, 128 << 20);
    assert!(small.device_profile().memory_layout().reservation <= 16 << 20);
    assert_eq!(small.address_space, Some(256 << 20));
    for name in ["rpi4-aarch64", "x86_64-generic"] {
        let large = Board::load(&dir.join(format!("{name}.toml"))).unwrap();
        assert!(large.device_profile().memory_layout().elides_bounds_checks(), "{name}");
        assert!(
            !large.device_profile().consume_fuel,
            "{name}: fuel only where a module has a limit"
        );
    }
}

#[test]
fn a_board_with_an_address_space_limit_must_keep_reservations_small() {
    let text = GOOD.replace(
        "[engine]\nmemory_reservation = 16777216\n",
        "address_space = \"256MiB\"\n",
    );
    let err = refused(&text);
    assert!(
        err.contains("`engine.memory_reservation`") && err.contains("256 MiB") && err.contains("4 GiB"),
        "{err}"
    );
    let fits = GOOD.replace("[engine]", "address_space = \"256MiB\"\n[engine]");
    Board::parse(&fits, "b.toml").unwrap();
}

const GOOD: &str = r#"
name = "b"
triple = "aarch64-unknown-linux-gnu"
artifact = "native"
ram = "256MiB"
memory_budget = "128MiB"
[engine]
memory_reservation = 16777216
[paths]
config = "/etc/arcella/arcella.toml"
data_dir = "/var/lib/arcella"
socket = "/run/arcella/arcella.sock"
[workers]
memory = "32MiB"
pids = 16
open_files = 32
"#;

fn refused(text: &str) -> String {
    Board::parse(text, "b.toml").unwrap_err().to_string()
}

#[test]
fn the_template_is_good() {
    Board::parse(GOOD, "b.toml").unwrap();
}

#[test]
fn bad_boards_are_refused_naming_file_and_field() {
    let cases = [
        (
            GOOD.replace("artifact = \"native\"", "artifact = \"pulley64\"")
                .replace("aarch64-unknown", "armv7-unknown")
                .replace("linux-gnu\"", "linux-gnueabihf\""),
            "b.toml: `artifact`: `pulley64` does not load on a 32-bit host",
        ),
        (
            GOOD.replace("aarch64-unknown-linux-gnu", "armv7-unknown-linux-gnueabihf"),
            "b.toml: `artifact`: `native`: Cranelift has no backend for armv7",
        ),
        (
            GOOD.replace("artifact = \"native\"", "artifact = \"pulley32\""),
            "b.toml: `artifact`: `pulley32` does not load on a 64-bit host",
        ),
        (
            GOOD.replace("memory_budget = \"128MiB\"", "memory_budget = \"512MiB\""),
            "b.toml: `memory_budget`",
        ),
        (
            GOOD.replace("memory = \"32MiB\"", "memory = \"1GiB\""),
            "b.toml: `workers.memory`",
        ),
        (GOOD.replace("aarch64-unknown-linux-gnu", "z80"), "b.toml: `triple`"),
        (
            GOOD.replace("[engine]", "[engine]\ntarget = \"pulley64\""),
            "b.toml: `engine.target`",
        ),
        (
            GOOD.replace("data_dir = \"/var/lib/arcella\"", "data_dir = \"var\""),
            "b.toml: `paths.data_dir`",
        ),
        (GOOD.replace("name = \"b\"", "name = \"generic\""), "b.toml: `name`"),
    ];
    for (text, expected) in cases {
        let err = refused(&text);
        assert!(err.contains(expected), "expected {expected:?}, got: {err}");
    }
}

#[test]
fn a_32_bit_reservation_must_fit_the_address_space() {
    let text = GOOD
        .replace("aarch64-unknown-linux-gnu", "armv7-unknown-linux-gnueabihf")
        .replace("artifact = \"native\"", "artifact = \"pulley32\"")
        .replace("memory_reservation = 16777216", "memory_reservation = 2147483648");
    let err = refused(&text);
    assert!(
        err.contains("`engine.memory_reservation`") && err.contains("32-bit address space"),
        "{err}"
    );
}

#[test]
fn unknown_keys_are_refused_with_their_line() {
    let err = refused(&GOOD.replace("ram = ", "rma = \"1G\"\nram = "));
    assert!(err.starts_with("b.toml:") && err.contains("rma"), "{err}");
    let err = refused(&GOOD.replace("pids = 16", "pids = 16\nseccmp = false"));
    assert!(err.contains("seccmp"), "{err}");
}

#[test]
fn a_board_file_must_carry_its_own_name() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("other.toml");
    std::fs::write(&file, GOOD).unwrap();
    let err = Board::load(&file).unwrap_err().to_string();
    assert!(err.contains("other.toml: `name`: `b` differs"), "{err}");
}

#[test]
fn search_finds_names_and_paths_and_lists_where_it_looked() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("b.toml"), GOOD).unwrap();
    let search = BoardSearch::new(vec!["/nonexistent".into(), dir.path().to_owned()]);
    assert_eq!(search.load("b", Path::new("/")).unwrap().name, "b");
    assert_eq!(search.load("b.toml", dir.path()).unwrap().name, "b");
    let err = search.load("nope", Path::new("/")).unwrap_err().to_string();
    assert!(err.contains("no board `nope`") && err.contains("/nonexistent"), "{err}");
    let err = search.load("../x", Path::new("/")).unwrap_err().to_string();
    assert!(err.contains("/../x"), "{err}");
}

#[test]
fn merging_keeps_what_the_file_sets() {
    let mut base: toml::Table = toml::from_str("a = 1\n[t]\nx = 1\ny = 2\n").unwrap();
    let over: toml::Table = toml::from_str("b = 2\n[t]\ny = 3\n").unwrap();
    merge_tables(&mut base, over);
    assert_eq!(toml::to_string(&base).unwrap(), "a = 1\nb = 2\n\n[t]\nx = 1\ny = 3\n");
}

#[test]
fn every_board_file_is_built_in_as_it_is_on_disk() {
    let files = board_files();
    assert_eq!(
        files.len(),
        builtin::BOARDS.len(),
        "board-configs/ and builtin.rs differ"
    );
    for file in files {
        let name = file.file_stem().unwrap().to_string_lossy().into_owned();
        let text = builtin::text(&name).unwrap_or_else(|| panic!("{name} is not built in"));
        assert_eq!(text, std::fs::read_to_string(&file).unwrap(), "{name}");
    }
}

#[test]
fn a_board_found_in_no_directory_is_taken_from_the_built_in_ones() {
    let search = BoardSearch::new(vec!["/nonexistent".into()]);
    let board = search.load("rpi4-aarch64", Path::new("/")).unwrap();
    assert_eq!(board.triple, "aarch64-unknown-linux-gnu");
    let err = search.load("rpi9", Path::new("/")).unwrap_err().to_string();
    assert!(err.contains("built-in boards (armv7-hf, rpi4-aarch64"), "{err}");
}
