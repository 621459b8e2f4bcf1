//! Embeds the project templates of `arcella new` (`templates/<lang>/<kind>/`
//! and `templates/<lang>/common/`) in the binary: generates a table of
//! every file under `templates/`, its path, whether it is executable and
//! its text, so a file added there ships without a list to keep by hand.
//!
//! And, for the device build (`--profile device`) of a target that has a
//! list in `packaging/code-order/`, has the linker lay out the functions
//! that list names first, together ([`order_hot_code`]).

use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::{env, fs};

type BoxError = Box<dyn std::error::Error>;

fn main() -> Result<(), BoxError> {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?).join("templates");
    println!("cargo:rerun-if-changed=templates");
    let mut files = Vec::new();
    collect(&root, &mut files)?;
    files.sort();
    let mut table = String::from("&[\n");
    for path in &files {
        println!("cargo:rerun-if-changed={}", path.display());
        let name = path
            .strip_prefix(&root)?
            .to_str()
            .ok_or("a template path is not UTF-8")?;
        let executable = fs::metadata(path)?.permissions().mode() & 0o111 != 0;
        writeln!(
            table,
            "    TemplateFile {{ path: {name:?}, executable: {executable}, text: include_str!({:?}) }},",
            path.display().to_string()
        )?;
    }
    table.push_str("]\n");
    fs::write(PathBuf::from(env::var("OUT_DIR")?).join("template_files.rs"), table)?;
    order_hot_code()
}

/// The functions a run and a start execute are a few hundred KB scattered
/// over megabytes of code; each first touch of a code page maps the 64 KiB
/// around it (the kernel's fault-around), so a process ends up holding
/// most of its binary. `packaging/code-order/<target>.txt` (written by
/// `scripts/order-code`) names those functions; for the device build of
/// that target the linker places them first, side by side
/// (`--symbol-ordering-file`). That takes LLD: Rust's default linker on
/// x86_64-unknown-linux-gnu, and for the ARM targets, whose cross gcc
/// would call GNU ld, the toolchain's own (`-fuse-ld=lld` with its
/// `gcc-ld` directory, as rustc itself links with it). Names the build no
/// longer has are skipped silently: a stale list costs memory, never a
/// failed link.
fn order_hot_code() -> Result<(), BoxError> {
    let target = env::var("TARGET")?;
    let list = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?)
        .join("packaging/code-order")
        .join(format!("{target}.txt"));
    println!("cargo:rerun-if-changed={}", list.display());
    // <target dir>/[<triple>/]<profile>/build/<package>-<hash>/out
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    let profile = out_dir.ancestors().nth(3).and_then(Path::file_name);
    let device = profile.is_some_and(|name| name == "device");
    if !device || !list.is_file() {
        return Ok(());
    }
    if target != "x86_64-unknown-linux-gnu" {
        let sysroot = std::process::Command::new(env::var("RUSTC")?)
            .args(["--print", "sysroot"])
            .output()?;
        let sysroot = String::from_utf8(sysroot.stdout)?;
        let gcc_ld = Path::new(sysroot.trim())
            .join("lib/rustlib")
            .join(env::var("HOST")?)
            .join("bin/gcc-ld");
        if !gcc_ld.join("ld.lld").is_file() {
            println!(
                "cargo:warning=no LLD in {}: the device build's hot code is not laid out together",
                gcc_ld.display()
            );
            return Ok(());
        }
        println!("cargo:rustc-link-arg-bins=-fuse-ld=lld");
        println!("cargo:rustc-link-arg-bins=-B{}", gcc_ld.display());
    }
    println!(
        "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
        list.display()
    );
    println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    Ok(())
}

/// Every file under `dir`, recursively (directories are listed too, so a
/// new one reruns the script).
fn collect(dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), BoxError> {
    if !dir.exists() {
        return Ok(());
    }
    println!("cargo:rerun-if-changed={}", dir.display());
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(&path, files)?;
        } else {
            files.push(path);
        }
    }
    Ok(())
}
