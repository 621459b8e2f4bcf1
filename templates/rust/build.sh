#!/bin/sh
# Builds {{name}}.wasm: src/lib.rs as a component of the
# arcella:platform/{{world}} world in wit/ (wit-bindgen; needs
# `rustup target add wasm32-wasip2`). OUT=FILE writes the component there
# instead; CARGO_TARGET_DIR is honoured.
set -eu
cd "$(dirname "$0")"
out=${OUT:-{{name}}.wasm}
cargo build --release --target wasm32-wasip2
cp "${CARGO_TARGET_DIR:-target}/wasm32-wasip2/release/{{crate}}.wasm" "$out"
echo "built $out: arcella run $out, or install it with component.toml and deployment.toml"
