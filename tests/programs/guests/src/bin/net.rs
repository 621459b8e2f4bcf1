//! Tries to open a TCP connection to the address given as the first
//! argument. Exit 0 if the host refused, 3 if the connection was made.

use std::io::Write;
use std::net::TcpStream;

fn main() {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9".into());
    match TcpStream::connect(&addr) {
        Ok(mut stream) => {
            let _ = stream.write_all(b"escaped");
            println!("ESCAPED: connected to {addr}");
            std::process::exit(3);
        }
        Err(e) => println!("blocked: connect {addr}: {e}"),
    }
}
