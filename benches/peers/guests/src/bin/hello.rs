//! Start-up probe: prints one line and exits.
fn main() {
    println!("hello from the bench");
}
