//! A service that polls Arcella's shutdown call between units of work.
//! On shutdown it writes /data/clean-exit (if /data is granted) and exits
//! 0. Given the argument `ignore`, it never looks and must be cancelled.
//! As a core module (wasip1) it uses the `arcella.shutdown_requested`
//! import; as a component (wasip2), `arcella:service/lifecycle` from the
//! repository's wit/deps/service/lifecycle.wit.

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

#[cfg(target_env = "p2")]
wit_bindgen::generate!({ path: "../../../wit/deps/service", world: "service" });

#[cfg(target_env = "p2")]
fn should_stop() -> bool {
    arcella::service::lifecycle::shutdown_requested()
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
