//! Allocates and touches 1 MiB blocks until the host stops it, or until the
//! number of MiB given as the first argument is reached. With `hold` as
//! the second argument it then keeps them, sleeping (not running) for an
//! hour: a module whose memory stays put (the telemetry tests).

fn main() {
    let mut args = std::env::args().skip(1);
    let stop: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(usize::MAX);
    let hold = args.next().as_deref() == Some("hold");
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    while blocks.len() < stop {
        let mut block = vec![0u8; 1 << 20];
        block[blocks.len() % (1 << 20)] = 1;
        blocks.push(std::hint::black_box(block));
    }
    println!("allocated {} MiB", blocks.len());
    if hold {
        std::thread::sleep(std::time::Duration::from_secs(3600));
        std::hint::black_box(&blocks);
    }
}
