#!/bin/sh
# Builds {{name}}.wasm, a WebAssembly component, from app.py against the
# world `{{name}}` of wit/world.wit. Needs componentize-py 0.25.1
# (`pip install componentize-py==0.25.1`).
set -eu
cd "$(dirname "$0")"
command -v componentize-py >/dev/null || {
    echo "build.sh: componentize-py is not on PATH: pip install componentize-py==0.25.1" >&2
    exit 1
}
# -d: the WIT package set (this project's world, and under wit/deps/ the
# interfaces Arcella provides); -w: the world to build; `app`: the module
# (app.py) holding the exports.
exec componentize-py -d wit -w {{name}} componentize app -o {{name}}.wasm
