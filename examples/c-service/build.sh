#!/bin/sh
# Builds c-service.wasm: main.c as a component of the
# arcella:platform/service world in wit/. Bindings from wit-bindgen's C
# generator, compiled by clang against Debian's wasi-libc as a preview-1
# reactor, made a component by `wasm-tools component new` with the
# preview-1 adapter of the daemon's wasmtime (written here by `arcella new`).
# OUT=FILE writes the component there instead; BUILD=DIR keeps the
# intermediate files there; ADAPTER=FILE names another adapter.
set -eu
cd "$(dirname "$0")"
out=${OUT:-c-service.wasm}
build=${BUILD:-build}
adapter=${ADAPTER:-wasi_snapshot_preview1.reactor.wasm}
mkdir -p "$build"
wit-bindgen c wit --world arcella:platform/service --out-dir "$build" >"$build/wit-bindgen.log" 2>&1 ||
    { cat "$build/wit-bindgen.log" >&2; exit 1; }
clang --target=wasm32-wasi --sysroot=/usr -mexec-model=reactor -Os -Wall -I"$build" -Wl,--strip-debug \
    -o "$build/core.wasm" main.c "$build/service.c" "$build/service_component_type.o"
wasm-tools component new "$build/core.wasm" --adapt "wasi_snapshot_preview1=$adapter" -o "$out"
echo "built $out: arcella run $out, or install it with component.toml and deployment.toml"
