#!/bin/sh
# Builds js-alarm.wasm from app.js against the world of wit/world.wit.
# Needs Node.js 18+ with componentize-js 0.23.0 (`npm install -g
# @bytecodealliance/componentize-js@0.23.0`; not `jco componentize`, which
# fails on a WIT directory) and `arcella` on PATH (for the interfaces it
# provides: `arcella wit`).
set -eu
cd "$(dirname "$0")"
name=js-alarm
command -v componentize-js >/dev/null || {
    echo "build.sh: componentize-js is not on PATH: npm install -g @bytecodealliance/componentize-js@0.23.0" >&2
    exit 1
}
# The interfaces Arcella provides, under wit/deps/ as `arcella new` lays
# them out (not kept in the repository: they come from the arcella binary,
# at the versions its daemon provides).
command -v arcella >/dev/null || {
    echo "build.sh: arcella is not on PATH (it writes the WIT of what it provides)" >&2
    exit 1
}
tmp=$(mktemp -d)
arcella wit --out "$tmp" >/dev/null
mkdir -p wit/deps/platform
cp "$tmp/platform.wit" wit/deps/platform/platform.wit
cp -R "$tmp/deps/." wit/deps/
rm -rf "$tmp"
exec componentize-js --wit wit --world-name $name -o $name.wasm app.js
