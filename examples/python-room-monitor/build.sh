#!/bin/sh
# Builds python-room-monitor.wasm from app.py against the world of
# wit/world.wit. Needs componentize-py 0.25.1 (`pip install
# componentize-py==0.25.1`) and `arcella` on PATH (for the interfaces it
# provides: `arcella wit`).
set -eu
cd "$(dirname "$0")"
name=python-room-monitor
command -v componentize-py >/dev/null || {
    echo "build.sh: componentize-py is not on PATH: pip install componentize-py==0.25.1" >&2
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
exec componentize-py -d wit -w $name componentize app -o $name.wasm
