//! A command in Rust on Arcella: runs to completion, printing its
//! arguments. Bindings come from the `arcella:platform/command` world
//! (wit/); the component exports `wasi:cli/run`.

wit_bindgen::generate!({ path: "wit", world: "arcella:platform/command", generate_all });

struct Command;

impl exports::wasi::cli::run::Guest for Command {
    fn run() -> Result<(), ()> {
        let args: Vec<String> = std::env::args().collect();
        println!("hello from rust, args {args:?}");
        Ok(())
    }
}

export!(Command);
