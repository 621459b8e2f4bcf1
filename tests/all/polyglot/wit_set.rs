//! The WIT package set as `arcella wit` writes it (the repository's `wit/`)
//! works with the language tools as it is: componentize-py generates
//! bindings for every `arcella:platform` world from it, and `cargo
//! component` builds a Rust component against it with the `Cargo.toml`
//! block docs/guests.md gives. (The templates'
//! layout, `arcella:platform` under `wit/deps/`, is built end to end by
//! `python_js.rs` and `rust_c.rs`.)

use super::{repo, run_in};
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

/// The `toml` block of docs/guests.md that lists the package set's
/// dependencies for cargo-component.
fn the_guides_cargo_component_block() -> String {
    let guide = std::fs::read_to_string(repo().join("docs/guests.md")).unwrap();
    guide
        .split("```toml\n")
        .skip(1)
        .filter_map(|rest| rest.split("```").next())
        .find(|block| block.contains("[package.metadata.component.target]"))
        .expect("docs/guests.md has the cargo-component block")
        .to_string()
}

#[test]
fn cargo_component_builds_a_command_against_arcella_wit_with_the_guides_cargo_toml() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("cc-hello");
    std::fs::create_dir_all(project.join("src")).unwrap();
    arcella(["wit", "--out", project.join("wit").to_str().unwrap()]).expect_code(0);
    std::fs::write(
        project.join("Cargo.toml"),
        format!(
            "[package]\nname = \"cc-hello\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
             [lib]\ncrate-type = [\"cdylib\"]\n\n\
             [dependencies]\nwit-bindgen-rt = {{ version = \"0.41\", features = [\"bitflags\"] }}\n\n\
             [workspace]\n\n\
             [package.metadata.component]\npackage = \"example:cc-hello\"\n\n{}",
            the_guides_cargo_component_block()
        ),
    )
    .unwrap();
    std::fs::write(
        project.join("src/lib.rs"),
        "#[allow(warnings)]\nmod bindings;\n\n\
         use bindings::exports::wasi::cli::run::Guest;\n\n\
         struct Component;\n\n\
         impl Guest for Component {\n    fn run() -> Result<(), ()> {\n        \
         println!(\"hello from cargo component\");\n        Ok(())\n    }\n}\n\n\
         bindings::export!(Component with_types_in bindings);\n",
    )
    .unwrap();
    // Its own target directory, whatever the test run's is.
    run_in(
        &project,
        "cargo",
        &["component", "build", "--release", "--target-dir", "target"],
    )
    .expect_code(0);
    let wasm = project.join("target/wasm32-wasip1/release/cc_hello.wasm");
    assert!(wasm.is_file(), "cargo component made no {}", wasm.display());
    arcella(["run", wasm.to_str().unwrap()])
        .expect_code(0)
        .stdout_has(&["hello from cargo component"]);
}
