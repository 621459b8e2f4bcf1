//! {{name}}: an Arcella command, a program that runs to completion
//! (`arcella run {{name}}.wasm ARGS...`, or installed with
//! `kind = "command"`). `run` below is its `main`: it gets its arguments,
//! environment, clocks, random numbers and the directories it was granted
//! through Rust's std (WASI), and its exit status is what `run` returns.
//!
//! Edit `run`; add imports to wit/world.wit.

wit_bindgen::generate!({ path: "wit", world: "{{name}}", generate_all });

struct Command;

impl exports::wasi::cli::run::Guest for Command {
    fn run() -> Result<(), ()> {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let who = if args.is_empty() { "world".to_string() } else { args.join(" ") };
        println!("hello, {who}, from {{name}}");
        Ok(())
    }
}

export!(Command);
