#!/usr/bin/env bash
# Builds c-meter.wasm, the component to compile and install:
#     ./build.sh
# (examples/c-meter, README.md)
# 1. clang compiles src/ and bindings/ for wasm32-wasi against wasi-libc
#    (a WASI preview-1 core module);
# 2. embed.mjs adds the types of the world in wit/world.wit (what
#    `jco embed` does; jco 1.35's own cannot read files);
# 3. `jco new` makes the component, with the WASI preview-1 adapter.
# CC (clang), WASI_SYSROOT (/usr: Debian's wasi-libc) and JCO (jco) may be
# overridden, e.g. for the wasi-sdk.
set -euo pipefail
cd "$(dirname "$0")"
CC="${CC:-clang}"
WASI_SYSROOT="${WASI_SYSROOT:-/usr}"
JCO="${JCO:-jco}"
# A service has a `main`: the WASI command adapter exports it as
# wasi:cli/run.
model=command
mkdir -p build
"$CC" --target=wasm32-wasi --sysroot="$WASI_SYSROOT" -mexec-model="$model" \
    -O2 -Wall -Wextra -Werror=implicit-function-declaration -Ibindings \
    -Wl,--strip-debug -o build/core.wasm src/*.c bindings/*.c
JCO="$JCO" node embed.mjs build/core.wasm wit meter build/embedded.wasm
"$JCO" new build/embedded.wasm "--wasi-$model" -o c-meter.wasm
echo "built c-meter.wasm"
