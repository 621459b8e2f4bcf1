//! Embeds the project templates of `arcella new` (`templates/<lang>/<kind>/`
//! and `templates/<lang>/common/`) in the binary: generates a table of
//! every file under `templates/`, its path, whether it is executable and
//! its text, so a file added there ships without a list to keep by hand.

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
