//! Real sockets from a guest, for the network-grant tests. Modes:
//!
//! - `tcp_echo connect ADDR LINE`: connects, sends LINE, prints the echo
//!   as `echo: LINE`.
//! - `tcp_echo listen ADDR`: listens, prints `listening on ADDR`, serves
//!   one client (echoes one line back), prints `served: LINE`.
//! - `tcp_echo udp ADDR MSG`: sends MSG from an ephemeral port, prints the
//!   answer as `udp echo: MSG`.
//! - `tcp_echo lookup NAME`: resolves NAME, prints `resolved: ADDRS`.
//! - `tcp_echo bench ADDR N`: N times connect + one-line echo + close,
//!   then N one-line round trips on one connection; prints
//!   `bench: N CONNECT_US ROUND_US` (benches/network.rs).
//!
//! A refusal prints `denied: ERROR (KIND)`; exit 0 on success, 5 when
//! refused with PermissionDenied, 6 on any other error. Built for
//! preview 1 too, where every socket call fails (no socket API).

use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs, UdpSocket};

fn connect(addr: &str, line: &str) -> std::io::Result<()> {
    let mut stream = TcpStream::connect(addr)?;
    stream.write_all(format!("{line}\n").as_bytes())?;
    let mut echo = String::new();
    BufReader::new(stream).read_line(&mut echo)?;
    println!("echo: {}", echo.trim_end());
    Ok(())
}

fn listen(addr: &str) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr)?;
    println!("listening on {}", listener.local_addr()?);
    let (stream, _) = listener.accept()?;
    // One stream, read through a shared borrow and written through another
    // (`try_clone` is not supported on WASI).
    let mut reader = BufReader::new(&stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut writer = &stream;
    writer.write_all(line.as_bytes())?;
    println!("served: {}", line.trim_end());
    Ok(())
}

fn udp(addr: &str, message: &str) -> std::io::Result<()> {
    let socket = UdpSocket::bind("0.0.0.0:0")?;
    socket.send_to(message.as_bytes(), addr)?;
    let mut buf = [0u8; 512];
    let (len, _) = socket.recv_from(&mut buf)?;
    println!("udp echo: {}", String::from_utf8_lossy(&buf[..len]));
    Ok(())
}

fn lookup(name: &str) -> std::io::Result<()> {
    let addrs: Vec<String> = (name, 80).to_socket_addrs()?.map(|a| a.ip().to_string()).collect();
    println!("resolved: {}", addrs.join(" "));
    Ok(())
}

fn bench(addr: &str, n: u32) -> std::io::Result<()> {
    let start = std::time::Instant::now();
    let mut line = String::new();
    for _ in 0..n {
        let stream = TcpStream::connect(addr)?;
        (&stream).write_all(b"x\n")?;
        line.clear();
        BufReader::new(&stream).read_line(&mut line)?;
    }
    let connects = start.elapsed();
    let stream = TcpStream::connect(addr)?;
    let mut reader = BufReader::new(&stream);
    let start = std::time::Instant::now();
    for _ in 0..n {
        (&stream).write_all(b"x\n")?;
        line.clear();
        reader.read_line(&mut line)?;
    }
    let rounds = start.elapsed();
    println!("bench: {n} {} {}", connects.as_micros(), rounds.as_micros());
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize| args.get(i).map_or("", String::as_str);
    let result = match arg(1) {
        "connect" => connect(arg(2), arg(3)),
        "listen" => listen(arg(2)),
        "udp" => udp(arg(2), arg(3)),
        "lookup" => lookup(arg(2)),
        "bench" => bench(arg(2), arg(3).parse().unwrap_or(100)),
        other => {
            println!("unknown mode `{other}`");
            std::process::exit(2);
        }
    };
    match result {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::PermissionDenied => {
            println!("denied: {e} ({:?})", e.kind());
            std::process::exit(5);
        }
        Err(e) => {
            println!("failed: {e} ({:?})", e.kind());
            std::process::exit(6);
        }
    }
}
