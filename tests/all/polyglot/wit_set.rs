//! The WIT package set as `arcella wit` writes it (the repository's `wit/`)
//! works with the language tools as it is: componentize-py generates
//! bindings for every `arcella:platform` world from it. (The templates'
//! layout, `arcella:platform` under `wit/deps/`, is built end to end by
//! `python_js.rs` and `rust_c.rs`.)

use super::run_in;
use crate::support::arcella;

#[test]
fn componentize_py_reads_every_world_of_the_package_set_arcella_wit_writes() {
    let dir = tempfile::tempdir().unwrap();
    let wit = dir.path().join("wit");
    arcella(["wit", "--out", wit.to_str().unwrap()]).expect_code(0);
    for world in ["command", "service", "http-handler", "message-handler", "provider"] {
        let out = format!("bindings-{world}");
        run_in(
            dir.path(),
            "componentize-py",
            &["-d", "wit", "-w", world, "bindings", &out],
        )
        .expect_code(0);
        assert!(
            dir.path().join(&out).join("wit_world/__init__.py").is_file(),
            "no bindings for {world}"
        );
    }
    // A world the package set does not have: an error naming it.
    let wrong = run_in(
        dir.path(),
        "componentize-py",
        &["-d", "wit", "-w", "server", "bindings", "x"],
    );
    assert_ne!(wrong.code, Some(0));
    assert!(wrong.stderr.contains("server"), "{}", wrong.stderr);
}
