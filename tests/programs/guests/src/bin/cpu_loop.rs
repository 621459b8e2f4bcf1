//! A CPU-bound workload: counts primes below N (default 200000) by trial
//! division. Used for fuel limits and the native-vs-pulley benchmark.

fn is_prime(n: u32) -> bool {
    if n < 2 {
        return false;
    }
    let mut d = 2;
    while d * d <= n {
        if n % d == 0 {
            return false;
        }
        d += 1;
    }
    true
}

fn main() {
    let limit: u32 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let count = (0..limit).filter(|&n| is_prime(std::hint::black_box(n))).count();
    println!("primes below {limit}: {count}");
}
