//! The content-addressed artifact store, through arcella-core's API, with
//! the real guest artifacts (so it runs in the device build too).

use crate::support::*;
use arcella_core::artifact::{ArtifactStore, LoadError, Program, StoreError};
use arcella_core::engine::{EngineSet, new_engine};
use arcella_core::run::{Grants, Invocation, Limits, Output, run_blocking};
use arcella_core::{ArtifactTarget, EngineProfile};
use std::fs;
use std::path::Path;

fn put(store: &ArtifactStore, guest: &str, target: &str) -> String {
    let path = artifact(guest, target);
    store.put_bytes(&fs::read(&path).unwrap(), &path).unwrap()
}

fn profile_for(target: &str) -> EngineProfile {
    let target = match target {
        "pulley64" => ArtifactTarget::Pulley64,
        _ => ArtifactTarget::Native,
    };
    EngineProfile::default().with_target(target)
}

fn run(program: &Program, profile: &EngineProfile) -> i32 {
    let grants = Grants {
        args: vec!["stored".into(), "exit=3".into()],
        ..Grants::default()
    };
    let invocation = Invocation {
        name: "stored",
        program,
        grants: &grants,
        limits: &Limits::default(),
        profile,
        output: &Output::Inherit,
        entrypoint: None,
        stop: None,
        health: None,
        host: &arcella_core::host::HostServices::default(),
        provide: None,
        usage: None,
    };
    run_blocking(&invocation).unwrap()
}

#[test]
fn stored_artifacts_load_by_mmap_and_run() {
    let data = tempfile::tempdir().unwrap();
    let store = ArtifactStore::open(data.path()).unwrap();
    for guest in ["hello_p1", "hello_p2"] {
        for target in TARGETS {
            let id = put(&store, guest, target);
            assert_eq!(put(&store, guest, target), id, "storing twice gives the same id");
            let profile = profile_for(target);
            let engine = new_engine(&profile).unwrap();
            let program = store.load(&engine, &profile, &id).unwrap();
            assert_eq!(run(&program, &profile), guest_exit(guest, 3));
            assert_eq!(store.header(&id).unwrap().id(), id);
        }
    }
    assert_eq!(store.list().unwrap().len(), 4);
}

/// Loading trusts the store's sealed record instead of re-hashing the code
/// file at every start (docs/security.md, "The artifact store"): what it
/// still refuses is a code file of the wrong size (truncated, or another
/// file in its place) or one that is not a wasmtime image.
#[test]
fn a_truncated_or_replaced_code_file_is_refused_before_loading() {
    let data = tempfile::tempdir().unwrap();
    let store = ArtifactStore::open(data.path()).unwrap();
    let id = put(&store, "hello_p1", "native");
    let code = store.dir().join(format!("{id}.code"));
    let good = fs::read(&code).unwrap();
    let profile = EngineProfile::default();
    let engine = new_engine(&profile).unwrap();
    let engines = EngineSet::new(&profile).unwrap();

    fs::write(&code, &good[..good.len() - 1]).unwrap();
    for err in [
        store.load(&engine, &profile, &id).unwrap_err(),
        store.load_in(&engines, &id).unwrap_err(),
        store.open_code(&id).unwrap_err(),
    ] {
        assert!(matches!(err, StoreError::Damaged { .. }), "{err}");
        let shown = err.to_string();
        assert!(
            shown.contains(&id) && shown.contains("bytes") && shown.contains("reinstall"),
            "{shown}"
        );
    }

    // Same size, but not a wasmtime image (its ELF header damaged).
    let mut foreign = good.clone();
    foreign[0] ^= 0xff;
    fs::write(&code, &foreign).unwrap();
    let err = store.open_code(&id).unwrap_err();
    assert!(err.to_string().contains("not a wasmtime precompiled image"), "{err}");
    let err = store.load(&engine, &profile, &id).unwrap_err();
    assert!(matches!(err, StoreError::Load(_)), "{err}");

    // A flipped byte inside the code passes the start-time checks; an
    // explicit verify (a scrub) still finds it.
    let mut flipped = good.clone();
    flipped[good.len() / 2] ^= 0x10;
    fs::write(&code, &flipped).unwrap();
    let err = store.verify(&id).unwrap_err();
    assert!(err.to_string().contains("hashes to"), "{err}");
    fs::write(&code, &good).unwrap();
    store.verify(&id).unwrap();
}

/// The store loads both fuel variants, each into its own engine, and says
/// which it is.
#[test]
fn both_fuel_variants_load_from_the_store_into_their_engines() {
    let data = tempfile::tempdir().unwrap();
    let store = ArtifactStore::open(data.path()).unwrap();
    let engines = EngineSet::new(&EngineProfile::default()).unwrap();
    for (label, metered) in [("native", false), ("native-fuel", true)] {
        let id = put(&store, "hello_p1", label);
        let (program, loaded_metered) = store.load_in(&engines, &id).unwrap();
        assert_eq!(loaded_metered, metered, "{label}");
        assert!(arcella_core::wasmtime::Engine::same(
            program.engine(),
            engines.engine(metered).unwrap()
        ));
        assert_eq!(run(&program, &engines.profile(metered)), guest_exit("hello_p1", 3));
    }
    let id = put(&store, "hello_p1", "noepoch");
    let err = store.load_in(&engines, &id).unwrap_err();
    assert!(
        matches!(err, StoreError::Load(LoadError::FingerprintMismatch { .. })),
        "the daemon's engines need epoch checks: {err}"
    );
}

#[test]
fn a_damaged_header_is_refused() {
    let data = tempfile::tempdir().unwrap();
    let store = ArtifactStore::open(data.path()).unwrap();
    let id = put(&store, "hello_p1", "native");
    let meta = store.dir().join(format!("{id}.meta"));
    let mut bytes = fs::read(&meta).unwrap();
    bytes[2] ^= 0x01;
    fs::write(&meta, bytes).unwrap();
    let err = store.header(&id).unwrap_err();
    assert!(matches!(err, StoreError::Damaged { .. }), "{err}");
}

#[test]
fn an_artifact_for_another_engine_is_refused_by_fingerprint() {
    let data = tempfile::tempdir().unwrap();
    let store = ArtifactStore::open(data.path()).unwrap();
    let id = put(&store, "hello_p1", "pulley64");
    let profile = EngineProfile::default();
    let engine = new_engine(&profile).unwrap();
    let err = store.load(&engine, &profile, &id).unwrap_err();
    assert!(
        matches!(err, StoreError::Load(LoadError::FingerprintMismatch { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("pulley64"), "{err}");
}

#[test]
fn leftovers_of_an_interrupted_write_are_cleared_on_open() {
    let data = tempfile::tempdir().unwrap();
    let store = ArtifactStore::open(data.path()).unwrap();
    let id = put(&store, "hello_p1", "native");
    // A crash between the code file and its .meta, and one mid-write.
    let orphan = store.dir().join(format!("{}.code", "ab".repeat(32)));
    fs::write(&orphan, b"half an artifact").unwrap();
    let temp = store.dir().join(".tmp-1-1-x.meta");
    fs::write(&temp, b"torn").unwrap();

    let store = ArtifactStore::open(data.path()).unwrap();
    assert!(!orphan.exists() && !temp.exists());
    assert_eq!(
        store.list().unwrap(),
        vec![id.clone()],
        "the complete artifact survives"
    );
    let profile = EngineProfile::default();
    store.load(&new_engine(&profile).unwrap(), &profile, &id).unwrap();
}

#[test]
fn removed_and_unknown_artifacts_are_missing() {
    let data = tempfile::tempdir().unwrap();
    let store = ArtifactStore::open(data.path()).unwrap();
    let id = put(&store, "hello_p1", "native");
    store.remove(&id).unwrap();
    assert!(store.list().unwrap().is_empty());
    assert!(matches!(store.header(&id), Err(StoreError::Missing { .. })));
    assert!(matches!(store.header("not-a-digest"), Err(StoreError::Missing { .. })));
    assert_eq!(fs::read_dir(store.dir()).unwrap().count(), 0, "no file left behind");
}

#[test]
fn a_damaged_artifact_is_never_stored() {
    let data = tempfile::tempdir().unwrap();
    let store = ArtifactStore::open(data.path()).unwrap();
    let mut bytes = fs::read(artifact("hello_p1", "native")).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    assert!(store.put_bytes(&bytes, Path::new("bad.cwasm")).is_err());
    assert_eq!(fs::read_dir(store.dir()).unwrap().count(), 0);
}
