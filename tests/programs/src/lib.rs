//! Guest programs for Arcella's tests, built from source by `build.rs`.
//!
//! Each guest `NAME` is at `GUESTS_DIR/NAME.wasm`, precompiled as
//! `NAME.native.cwasm` and `NAME.pulley64.cwasm`. Rust guests are named
//! `<program>_p1` (core module, wasm32-wasip1) and `<program>_p2`
//! (component, wasm32-wasip2); WAT guests by their file name.

use std::path::PathBuf;

include!(concat!(env!("OUT_DIR"), "/programs.rs"));

/// Path of a guest's `.wasm`.
pub fn wasm(name: &str) -> PathBuf {
    assert!(GUESTS.contains(&name), "no guest named {name}");
    PathBuf::from(GUESTS_DIR).join(format!("{name}.wasm"))
}

/// Path of a guest's artifact for `target` (`native` or `pulley64`;
/// `native-fuel` and `pulley64-fuel`, with fuel metering, for `cpu_loop_p1`,
/// `cpu_loop_p2` and `hello_p1`; also `aarch64-unknown-linux-gnu`,
/// `smallres` (another memory reservation) and `noepoch` for `hello_p1`).
pub fn artifact(name: &str, target: &str) -> PathBuf {
    assert!(GUESTS.contains(&name), "no guest named {name}");
    PathBuf::from(GUESTS_DIR).join(format!("{name}.{target}.cwasm"))
}

/// The artifact targets every guest is precompiled for.
pub const TARGETS: &[&str] = &["native", "pulley64"];
