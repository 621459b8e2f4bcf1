//! `cargo bench --bench network`: what a network grant costs a guest.
//!
//! 1. TCP on loopback from the `tcp_echo` component (in-process, under a
//!    `connect` rule, so every connect passes wasmtime-wasi's address
//!    check): N times connect + one-line echo + close, then N one-line
//!    round trips on one connection; the same loops in native Rust
//!    (std::net) as the baseline. Native and pulley64 artifacts.
//! 2. The address check alone: one decision against a few rules.
//!
//! The guest times itself (its monotonic clock) and prints
//! `bench: N CONNECT_US ROUND_US` into a captured log.

// A bench that cannot set up should stop loudly, not report a figure.
#![allow(clippy::expect_used)]

use arcella_core::ArtifactTarget;
use arcella_core::EngineProfile;
use arcella_core::artifact::{Program, format};
use arcella_core::engine::new_engine;
use arcella_core::host::HostServices;
use arcella_core::host::network::NetworkRules;
use arcella_core::host::network::check::Checker;
use arcella_core::run::{Grants, Invocation, Limits, LogBook, Output, run_blocking};
use arcella_test_programs::artifact;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

const N: u32 = 500;

fn main() {
    println!("arcella network bench (loopback, {N} operations per figure)\n");
    let addr = echo_server();
    let (native_connect, native_round) = native(addr);
    println!(
        "native std::net: connect+echo {:.1} µs, round trip {:.1} µs",
        per(native_connect),
        per(native_round)
    );
    for target in ["native", "pulley64"] {
        let (connect, round) = guest(addr, target);
        println!(
            "guest ({target} artifact): connect+echo {:.1} µs ({:.2}x native), round trip {:.1} µs ({:.2}x)",
            per(connect),
            connect.as_secs_f64() / native_connect.as_secs_f64(),
            per(round),
            round.as_secs_f64() / native_round.as_secs_f64(),
        );
    }
    address_check();
}

fn per(total: Duration) -> f64 {
    total.as_secs_f64() * 1e6 / f64::from(N)
}

/// Echoes lines, one connection after another, for the life of the bench.
fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let _ = stream.set_nodelay(true);
            let mut reader = BufReader::new(&stream);
            let mut line = String::new();
            while matches!(reader.read_line(&mut line), Ok(n) if n > 0) {
                if (&stream).write_all(line.as_bytes()).is_err() {
                    break;
                }
                line.clear();
            }
        }
    });
    addr
}

fn native(addr: SocketAddr) -> (Duration, Duration) {
    let mut line = String::new();
    let start = Instant::now();
    for _ in 0..N {
        let stream = TcpStream::connect(addr).expect("connect");
        (&stream).write_all(b"x\n").expect("write");
        line.clear();
        BufReader::new(&stream).read_line(&mut line).expect("read");
    }
    let connects = start.elapsed();
    let stream = TcpStream::connect(addr).expect("connect");
    let mut reader = BufReader::new(&stream);
    let start = Instant::now();
    for _ in 0..N {
        (&stream).write_all(b"x\n").expect("write");
        line.clear();
        reader.read_line(&mut line).expect("read");
    }
    (connects, start.elapsed())
}

fn guest(addr: SocketAddr, target: &str) -> (Duration, Duration) {
    let bytes = std::fs::read(artifact("tcp_echo_p2", target)).expect("tcp_echo artifact");
    let header = format::decode(&bytes).expect("decode").header;
    let profile = EngineProfile::default().with_target(ArtifactTarget::from_resolved(&header.fingerprint.target));
    let engine = new_engine(&profile).expect("engine");
    let program: Program =
        arcella_core::artifact::load::load_bytes(&engine, &profile, &bytes, Path::new(target)).expect("load");
    let grants = Grants {
        args: vec!["tcp_echo".into(), "bench".into(), addr.to_string(), N.to_string()],
        network: NetworkRules::parse(&[addr.to_string()], &[], &[], false).expect("rule"),
        ..Grants::default()
    };
    let book = LogBook::new("tcp_echo", None);
    let invocation = Invocation {
        name: "tcp_echo",
        program: &program,
        grants: &grants,
        limits: &Limits::default(),
        profile: &profile,
        output: &Output::Capture(book.clone()),
        entrypoint: None,
        stop: None,
        health: None,
        host: &HostServices::default(),
        provide: None,
        usage: None,
    };
    let code = run_blocking(&invocation).expect("run");
    let lines = book.tail(20);
    let line = lines
        .iter()
        .find_map(|l| l.text.strip_prefix("bench: "))
        .unwrap_or_else(|| panic!("no figures (exit {code}): {lines:?}"));
    let figures: Vec<u64> = line.split(' ').map(|f| f.parse().expect("a number")).collect();
    (Duration::from_micros(figures[1]), Duration::from_micros(figures[2]))
}

fn address_check() {
    let rules = NetworkRules::parse(
        &[
            "10.0.0.0/8:502".into(),
            "192.168.1.10:1883".into(),
            "127.0.0.1:8000-8099".into(),
        ],
        &[],
        &[],
        false,
    )
    .expect("rules");
    let checker = Checker::new(rules, HostServices::default());
    let addr: SocketAddr = "127.0.0.1:8050".parse().expect("addr");
    let rounds = 100_000u32;
    let start = Instant::now();
    // IP rules resolve nothing: no tokio context needed.
    smol::block_on(async {
        for _ in 0..rounds {
            assert!(
                checker
                    .allows(addr, wasmtime_wasi::sockets::SocketAddrUse::TcpConnect)
                    .await
            );
        }
    });
    let each = start.elapsed().as_secs_f64() * 1e9 / f64::from(rounds);
    println!("\naddress check (3 IP rules, last one matching): {each:.0} ns per decision");
}
