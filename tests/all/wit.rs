//! `arcella wit --out DIR` writes exactly the repository's `wit/`: every
//! file, byte for byte, and no other (a file added to `wit/` but not to
//! the binary fails here).

use crate::support::*;
use std::collections::BTreeMap;
use std::path::Path;

/// Every file under `root`, by its path relative to it.
fn files(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut found = BTreeMap::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                let name = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                found.insert(name, std::fs::read(&path).unwrap());
            }
        }
    }
    found
}

#[test]
fn the_binary_writes_the_wit_package_set_of_the_source_tree() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("wit");
    arcella(["wit", "--out", dir.to_str().unwrap()])
        .expect_code(0)
        .stdout_has(&[
            "wrote 24 files",
            "arcella:platform/command, service, http-handler, message-handler, provider",
        ]);
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("wit");
    let (written, expected) = (files(&dir), files(&repo));
    assert_eq!(written.keys().collect::<Vec<_>>(), expected.keys().collect::<Vec<_>>());
    assert!(written == expected, "a file differs from wit/");
    // Written again over itself: the same, and --json says what it wrote.
    let ran = arcella(["--json", "wit", "--out", dir.to_str().unwrap()]);
    let json: serde_json::Value = serde_json::from_str(ran.expect_code(0).stdout.trim()).unwrap();
    assert_eq!(json["files"].as_array().unwrap().len(), 24);
    // Somewhere it cannot write: the error names the file.
    let blocked = out.path().join("file");
    std::fs::write(&blocked, "").unwrap();
    arcella(["wit", "--out", blocked.to_str().unwrap()])
        .expect_code(1)
        .stderr_has(&["cannot write"]);
}
