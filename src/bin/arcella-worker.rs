//! The `arcella-worker` binary; everything it does is in the
//! `arcella-worker` crate (worker/).

fn main() -> std::process::ExitCode {
    arcella_worker::main()
}
