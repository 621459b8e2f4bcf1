#!/bin/sh
# Builds rust-service.wasm: src/lib.rs as a component of the
# arcella:platform/service world in wit/ (wit-bindgen; needs
# `rustup target add wasm32-wasip2`). OUT=FILE writes the component there
# instead; CARGO_TARGET_DIR is honoured.
set -eu
cd "$(dirname "$0")"
out=${OUT:-rust-service.wasm}
cargo build --release --target wasm32-wasip2
cp "${CARGO_TARGET_DIR:-target}/wasm32-wasip2/release/rust_service.wasm" "$out"
echo "built $out: arcella run $out, or install it with component.toml and deployment.toml"
