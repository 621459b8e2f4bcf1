//! {{name}}: an Arcella provider of typed calls (docs/typed-calls.md). It
//! exports `local:{{name}}/api@0.1.0` (wit/world.wit); other modules
//! import that interface and the daemon links their calls to this module,
//! kept ready (`kind = "provider"`). Each `greet` counts itself in
//! `wasi:keyvalue` and logs through `wasi:logging`.
//!
//! Edit the interface in wit/world.wit, then its implementation below.

wit_bindgen::generate!({ path: "wit", world: "{{name}}", generate_all });

use exports::local::{{name_snake}}::api::Guest;
use wasi::keyvalue::{atomics, store};
use wasi::logging::logging::{Level, log};

struct Provider;

impl Guest for Provider {
    fn greet(who: String) -> String {
        let calls = store::open("default").and_then(|bucket| atomics::increment(&bucket, "greetings", 1));
        match calls {
            Ok(n) => {
                log(Level::Info, "{{name}}", &format!("greeting {who} (call {n})"));
                format!("hello, {who} (greeting {n})")
            }
            Err(e) => {
                log(Level::Warn, "{{name}}", &format!("no key-value state, call not counted: {e:?}"));
                format!("hello, {who}")
            }
        }
    }
}

export!(Provider);
