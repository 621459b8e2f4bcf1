//! A service that polls Arcella's shutdown call between units of work.
//! On shutdown it writes /data/clean-exit (if /data is granted) and exits
//! 0. Given the argument `ignore`, it never looks and must be cancelled.
//! Preview 1 only: the `arcella` import is a core-module import.

#[cfg(target_env = "p1")]
#[link(wasm_import_module = "arcella")]
unsafe extern "C" {
    fn shutdown_requested() -> i32;
}

#[cfg(target_env = "p1")]
fn should_stop() -> bool {
    // SAFETY: a host function without arguments or memory access.
    unsafe { shutdown_requested() != 0 }
}

#[cfg(not(target_env = "p1"))]
fn should_stop() -> bool {
    false
}

fn main() {
    let ignore = std::env::args().nth(1).as_deref() == Some("ignore");
    println!("working");
    loop {
        if !ignore && should_stop() {
            println!("shutdown requested: cleaning up");
            let _ = std::fs::write("/data/clean-exit", "bye\n");
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
