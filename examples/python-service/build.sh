#!/bin/sh
# Builds python-service.wasm: app.py as a component of the
# arcella:platform/service world in wit/ (componentize-py, pinned in
# scripts/guest-tools; `pip install componentize-py==0.25.1` elsewhere).
# OUT=FILE writes the component there instead.
set -eu
cd "$(dirname "$0")"
out=${OUT:-python-service.wasm}
componentize-py -d wit -w service componentize app -o "$out"
echo "built $out: arcella run $out, or install it with component.toml and deployment.toml"
