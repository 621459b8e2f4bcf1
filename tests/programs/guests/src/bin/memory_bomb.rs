//! Allocates and touches 1 MiB blocks until the host stops it, or until the
//! number of MiB given as the first argument is reached.

fn main() {
    let stop: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(usize::MAX);
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    while blocks.len() < stop {
        let mut block = vec![0u8; 1 << 20];
        block[blocks.len() % (1 << 20)] = 1;
        blocks.push(std::hint::black_box(block));
    }
    println!("allocated {} MiB", blocks.len());
}
