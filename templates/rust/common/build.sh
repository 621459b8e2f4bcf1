#!/usr/bin/env bash
# Builds {{name}}.wasm, the component to compile and install:
#     ./build.sh
# Needs Rust with the wasm32-wasip2 target (`rustup target add
# wasm32-wasip2`). Cargo builds into ./target (or $CARGO_TARGET_DIR).
set -euo pipefail
cd "$(dirname "$0")"
cargo build --release --target wasm32-wasip2
target="${CARGO_TARGET_DIR:-target}"
cp "$target/wasm32-wasip2/release/{{name_snake}}.wasm" {{name}}.wasm
echo "built {{name}}.wasm"
