//! A service that reads its runtime configuration (`wasi:config/store`)
//! and logs through `wasi:logging` until asked to stop. Each time the key
//! `greeting` reads differently it logs `greeting: VALUE` at info, a warn
//! line, and prints `greeting=VALUE keys=N` (`<none>` when absent; N
//! from `get-all`); at start it also prints what a missing key reads as.
//! Components only: the wasip1 build exits 1.

#[cfg(target_env = "p2")]
mod config {
    wit_bindgen::generate!({ path: "../../../wit/deps/config", world: "imports" });
}

#[cfg(target_env = "p2")]
mod logging {
    wit_bindgen::generate!({ path: "../../../wit/deps/logging", world: "imports" });
}

#[cfg(target_env = "p2")]
mod lifecycle {
    wit_bindgen::generate!({ path: "../../../wit/deps/service", world: "service" });
}

#[cfg(target_env = "p2")]
fn main() {
    use config::wasi::config::store;
    use logging::wasi::logging::logging::{Level, log};
    let missing = store::get("no-such-key");
    println!("missing={missing:?}");
    let mut last: Option<Option<String>> = None;
    loop {
        if lifecycle::arcella::service::lifecycle::shutdown_requested() {
            println!("shutdown requested");
            return;
        }
        let greeting = match store::get("greeting") {
            Ok(value) => value,
            Err(e) => {
                println!("error={e:?}");
                None
            }
        };
        if last.as_ref() != Some(&greeting) {
            let shown = greeting.as_deref().unwrap_or("<none>");
            log(Level::Info, "greeting", shown);
            log(Level::Warn, "config_log", &format!("greeting is now {shown}"));
            let keys = store::get_all().map(|all| all.len()).unwrap_or(usize::MAX);
            println!("greeting={shown} keys={keys}");
            last = Some(greeting);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[cfg(not(target_env = "p2"))]
fn main() {
    eprintln!("config_log imports wasi:config and wasi:logging: build it as a component (wasm32-wasip2)");
    std::process::exit(1);
}
