//! Recurses without bound; the host's stack limit must stop it.

#[inline(never)]
fn descend(depth: u64, pad: [u64; 8]) -> u64 {
    let pad = std::hint::black_box(pad);
    descend(depth + 1, [pad[0] + depth; 8]) + pad[7]
}

fn main() {
    println!("descending");
    println!("{}", descend(0, [0; 8]));
}
