//! File access inside and outside a granted directory `/data`.
//!
//! `files write-read`: reads /data/in.txt, writes /data/out.txt; exit 0, or
//! 4 if the write was refused (read-only grant), 5 if the read failed.
//! `files escape`: tries to reach files outside /data; exit 0 if every
//! attempt was refused, 3 if any succeeded.

use std::fs;

fn write_read() -> i32 {
    match fs::read_to_string("/data/in.txt") {
        Ok(text) => println!("read: {}", text.trim_end()),
        Err(e) => {
            println!("read failed: {e}");
            return 5;
        }
    }
    match fs::write("/data/out.txt", "written by the guest\n") {
        Ok(()) => {
            println!("wrote /data/out.txt");
            0
        }
        Err(e) => {
            println!("write refused: {e}");
            4
        }
    }
}

fn escape() -> i32 {
    let attempts = [
        "/data/../outside.txt",
        "/data/../../../../etc/passwd",
        "../outside.txt",
        "/etc/passwd",
        "/proc/self/mem",
        "/data/link-out/outside.txt",
        "/data/link-to-outside-file",
    ];
    let mut escaped = 0;
    for path in attempts {
        match fs::read(path) {
            Ok(bytes) => {
                println!("ESCAPED: read {} bytes from {path}", bytes.len());
                escaped += 1;
            }
            Err(e) => println!("blocked: {path}: {e}"),
        }
    }
    match fs::write("/data/../planted.txt", "x") {
        Ok(()) => {
            println!("ESCAPED: wrote /data/../planted.txt");
            escaped += 1;
        }
        Err(e) => println!("blocked: write /data/../planted.txt: {e}"),
    }
    if escaped == 0 { 0 } else { 3 }
}

fn main() {
    let code = match std::env::args().nth(1).as_deref() {
        Some("write-read") => write_read(),
        Some("escape") => escape(),
        other => {
            eprintln!("usage: files write-read|escape (got {other:?})");
            2
        }
    };
    std::process::exit(code);
}
