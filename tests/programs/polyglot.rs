//! The polyglot examples (examples/<lang>-service), built from source with
//! their own `./build.sh` and the pinned toolchains `scripts/guest-tools`
//! installs, then precompiled for `native` only (a Python component is
//! ~18 MB and compiles in ~30 s; pulley adds nothing these tests need).
//!
//! Each is rebuilt only when an input is newer than its .wasm, and
//! recompiled only when the .wasm or this build script is newer than its
//! .cwasm, so editing an unrelated guest does not cost a Python build.
//! Without the tools, nothing is built and the tests that need these
//! guests fail naming `scripts/guest-tools`.

use super::{BoxError, EngineProfile, compile};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;
use std::{env, fs};

/// (example directory under examples/, guest name).
pub const EXAMPLES: &[(&str, &str)] = &[
    ("rust-service", "rust_service"),
    ("c-service", "c_service"),
    ("python-service", "python_service"),
    ("js-service", "js_service"),
];

/// The tools' directory: `ARCELLA_GUEST_TOOLS`, else target/guest-tools
/// of the repository.
pub fn tools_dir(manifest_dir: &Path) -> PathBuf {
    env::var_os("ARCELLA_GUEST_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest_dir.join("../../target/guest-tools"))
}

/// Builds and precompiles every example into `guests_out`; returns the
/// guest names, or why none was built.
pub fn build(manifest_dir: &Path, out_dir: &Path, guests_out: &Path) -> Result<Result<Vec<String>, String>, BoxError> {
    let tools = tools_dir(manifest_dir);
    println!("cargo:rerun-if-env-changed=ARCELLA_GUEST_TOOLS");
    println!("cargo:rerun-if-changed={}", tools.join("ready").display());
    if !tools.join("ready").is_file() {
        let why = format!(
            "the polyglot examples were not built: no guest tools in {} (run scripts/guest-tools, \
             then build the tests again)",
            tools.display()
        );
        println!("cargo:warning={why}");
        return Ok(Err(why));
    }
    let adapter = out_dir.join("wasi_snapshot_preview1.reactor.wasm");
    fs::write(
        &adapter,
        wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
    )?;
    let path = format!(
        "{}:{}",
        tools.join("bin").display(),
        env::var("PATH").unwrap_or_default()
    );
    let wit = manifest_dir.join("../../wit");
    let this_script = env::current_exe()?;
    let mut names = Vec::new();
    for (example, name) in EXAMPLES {
        let dir = manifest_dir.join("../../examples").join(example);
        println!("cargo:rerun-if-changed={}", dir.display());
        let wasm = guests_out.join(format!("{name}.wasm"));
        if newest(&[dir.clone(), wit.clone()])? > modified(&wasm) {
            let mut cmd = Command::new(dir.join("build.sh"));
            cmd.env("PATH", &path)
                .env("OUT", &wasm)
                .env("ADAPTER", &adapter)
                .env("BUILD", out_dir.join(format!("{name}-build")))
                .env("CARGO_TARGET_DIR", out_dir.join("guests-target"));
            for var in [
                "CARGO_ENCODED_RUSTFLAGS",
                "RUSTFLAGS",
                "CARGO_BUILD_RUSTFLAGS",
                "RUSTC_WRAPPER",
                "RUSTC_WORKSPACE_WRAPPER",
                "CLIPPY_ARGS",
                "CLIPPY_CONF_DIR",
            ] {
                cmd.env_remove(var);
            }
            let status = cmd.status()?;
            if !status.success() {
                return Err(format!("examples/{example}/build.sh failed ({status}): see its output above").into());
            }
        }
        let cwasm = guests_out.join(format!("{name}.native.cwasm"));
        if modified(&wasm).max(modified(&this_script)) > modified(&cwasm) {
            let compiled = compile(&EngineProfile::default(), &fs::read(&wasm)?, &format!("{name}.wasm"))?;
            fs::write(&cwasm, compiled.encode())?;
        }
        names.push((*name).to_owned());
    }
    Ok(Ok(names))
}

fn modified(path: &Path) -> SystemTime {
    fs::metadata(path)
        .and_then(|m| m.modified())
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

/// The newest modification time of any file under `roots` (following
/// symbolic links, skipping build outputs).
fn newest(roots: &[PathBuf]) -> Result<SystemTime, BoxError> {
    let mut newest = SystemTime::UNIX_EPOCH;
    let mut stack = roots.to_vec();
    while let Some(path) = stack.pop() {
        let meta = fs::metadata(&path)?;
        if meta.is_dir() {
            for entry in fs::read_dir(&path)? {
                let entry = entry?.path();
                let skip = entry
                    .file_name()
                    .is_some_and(|n| n == "target" || n == "build" || n == "node_modules" || n == "__pycache__");
                if !skip {
                    stack.push(entry);
                }
            }
        } else {
            newest = newest.max(meta.modified()?);
        }
    }
    Ok(newest)
}
