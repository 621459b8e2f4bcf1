//! Sleeps inside a host call (WASI poll) for an hour: a timeout must stop
//! it even though no wasm instruction runs meanwhile.

fn main() {
    println!("sleeping");
    std::thread::sleep(std::time::Duration::from_secs(3600));
    println!("woke up");
}
