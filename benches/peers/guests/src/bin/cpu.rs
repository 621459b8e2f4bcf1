//! A CoreMark-like CPU workload (not EEMBC CoreMark, whose source cannot be
//! fetched here): the same four kernels CoreMark times — linked-list
//! search and sort, small integer matrix arithmetic, a character-class
//! state machine, and CRC-16 over their results — on CoreMark-sized data
//! (2 KB working set), run for about `SECONDS` seconds. Prints
//! `iterations/s` as measured inside the guest, so start-up is not timed.

use std::time::Instant;

const SECONDS: f64 = 3.0;
const LIST_LEN: usize = 64;
const N: usize = 12;

fn crc16(mut crc: u16, data: u16) -> u16 {
    for i in 0..16 {
        let bit = ((data >> i) & 1) ^ (crc & 1);
        crc >>= 1;
        if bit == 1 {
            crc ^= 0xa001;
        }
    }
    crc
}

/// Linked list in an array (index links), as CoreMark's list benchmark.
fn list_kernel(seed: u32, data: &mut [(u16, u16); LIST_LEN], next: &mut [usize; LIST_LEN]) -> u16 {
    for (i, item) in data.iter_mut().enumerate() {
        item.0 = (seed as u16).wrapping_mul(i as u16 + 1) ^ 0x5a5a;
        item.1 = i as u16;
    }
    // Insertion sort of the links by value.
    let mut order: [usize; LIST_LEN] = std::array::from_fn(|i| i);
    for i in 1..LIST_LEN {
        let mut j = i;
        while j > 0 && data[order[j - 1]].0 > data[order[j]].0 {
            order.swap(j - 1, j);
            j -= 1;
        }
    }
    for w in order.windows(2) {
        next[w[0]] = w[1];
    }
    next[order[LIST_LEN - 1]] = usize::MAX;
    // Find values by walking the list.
    let mut crc = 0;
    for k in 0..8u16 {
        let want = data[(k as usize * 7) % LIST_LEN].0;
        let mut at = order[0];
        let mut steps = 0u16;
        while at != usize::MAX && data[at].0 != want {
            at = next[at];
            steps += 1;
        }
        crc = crc16(crc, steps);
    }
    crc
}

fn matrix_kernel(seed: u32, a: &mut [[i32; N]; N], b: &mut [[i32; N]; N], c: &mut [[i32; N]; N]) -> u16 {
    for i in 0..N {
        for j in 0..N {
            a[i][j] = ((seed as i32).wrapping_add((i * N + j) as i32)) & 0xff;
            b[i][j] = ((seed as i32) ^ ((j * N + i) as i32)) & 0xff;
        }
    }
    for i in 0..N {
        for j in 0..N {
            let mut sum = 0i32;
            for k in 0..N {
                sum = sum.wrapping_add(a[i][k].wrapping_mul(b[k][j]));
            }
            c[i][j] = sum;
        }
    }
    let mut crc = 0;
    for row in c.iter() {
        for v in row {
            crc = crc16(crc, (*v as u16) ^ ((*v >> 16) as u16));
        }
    }
    crc
}

#[derive(Clone, Copy, PartialEq)]
enum State {
    Start,
    Int,
    Frac,
    Exp,
    Invalid,
}

fn state_kernel(seed: u32, text: &mut [u8; 256]) -> u16 {
    const ALPHABET: &[u8] = b"0123456789.,e-+x ";
    let mut x = seed;
    for byte in text.iter_mut() {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        *byte = ALPHABET[(x >> 16) as usize % ALPHABET.len()];
    }
    let mut counts = [0u16; 5];
    let mut state = State::Start;
    for &ch in text.iter() {
        state = match (state, ch) {
            (_, b',') => {
                counts[state as usize] += 1;
                State::Start
            }
            (State::Start, b'0'..=b'9' | b'-' | b'+') => State::Int,
            (State::Int, b'0'..=b'9') => State::Int,
            (State::Int, b'.') => State::Frac,
            (State::Frac, b'0'..=b'9') => State::Frac,
            (State::Int | State::Frac, b'e') => State::Exp,
            (State::Exp, b'0'..=b'9' | b'-' | b'+') => State::Exp,
            _ => State::Invalid,
        };
    }
    counts.iter().fold(0, |crc, &n| crc16(crc, n))
}

fn main() {
    let mut data = [(0u16, 0u16); LIST_LEN];
    let mut next = [0usize; LIST_LEN];
    let (mut a, mut b, mut c) = ([[0; N]; N], [[0; N]; N], [[0; N]; N]);
    let mut text = [0u8; 256];
    let mut crc = 0u16;
    let started = Instant::now();
    let mut iterations = 0u64;
    loop {
        for _ in 0..200 {
            let seed = iterations as u32;
            crc = crc16(crc, list_kernel(seed, &mut data, &mut next));
            crc = crc16(crc, matrix_kernel(seed, &mut a, &mut b, &mut c));
            crc = crc16(crc, state_kernel(seed, &mut text));
            iterations += 1;
        }
        if started.elapsed().as_secs_f64() >= SECONDS {
            break;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!("cpu: {iterations} iterations in {secs:.3} s, crc {crc:04x}");
    println!("RESULT iterations_per_s {:.1}", iterations as f64 / secs);
}
