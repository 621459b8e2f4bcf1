//! Records the triple this crate is built for, so an engine whose artifact
//! target is `native` can name itself in fingerprints and error messages.

fn main() {
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".to_owned());
    println!("cargo:rustc-env=ARCELLA_HOST_TRIPLE={target}");
    println!("cargo:rerun-if-changed=build.rs");
}
