//! `http_get URL`: one GET through wasi:http; prints `status N` and the
//! body, or `error: …` (exit 1) when the host or the network refuses it.

#[path = "../client.rs"]
mod client;

fn main() {
    let Some(url) = std::env::args().nth(1) else {
        eprintln!("usage: http_get URL");
        std::process::exit(2);
    };
    match client::get(&url) {
        Ok((status, body)) => {
            println!("status {status}");
            println!("{}", String::from_utf8_lossy(&body).trim_end());
        }
        Err(e) => {
            println!("error: {e:?}");
            std::process::exit(1);
        }
    }
}
