//! End-to-end tests of the `arcella` binary. One test binary (wasmtime's
//! `tests/all` layout) keeps link time down; a module per topic.
//!
//! Every guest is real source built by `arcella-test-programs` and run as a
//! `native` and a `pulley64` artifact. The same tests run against the
//! `--no-default-features --features mqtt,tls` build, which can only load
//! artifacts.

// Helpers shared by tests panic on a broken setup, like the tests do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod bad_input;
mod cli;
#[cfg(feature = "compiler")]
mod compile;
mod conformance;
mod daemon;
mod files;
mod guests;
#[cfg(feature = "http")]
mod http;
mod limits;
mod network;
mod packaging;
#[cfg(feature = "compiler")]
mod polyglot;
mod store;
mod support;
mod wit;
