#!/bin/sh
# Builds {{name}}.wasm, a WebAssembly component, from app.js against the
# world `{{name}}` of wit/world.wit. Needs componentize-js 0.23.0
# (`npm install -g @bytecodealliance/componentize-js@0.23.0`; Node.js 18
# or newer). Not `jco componentize`: jco 1.35 fails on a WIT directory.
set -eu
cd "$(dirname "$0")"
command -v componentize-js >/dev/null || {
    echo "build.sh: componentize-js is not on PATH: npm install -g @bytecodealliance/componentize-js@0.23.0" >&2
    exit 1
}
# --wit: the WIT package set (this project's world, and under wit/deps/
# the interfaces Arcella provides); --world-name: the world to build.
exec componentize-js --wit wit --world-name {{name}} -o {{name}}.wasm app.js
