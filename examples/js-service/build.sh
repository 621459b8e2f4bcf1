#!/bin/sh
# Builds js-service.wasm: app.js as a component of the
# arcella:platform/service world in wit/ (componentize-js, pinned in
# scripts/guest-tools; `npm install @bytecodealliance/componentize-js@0.23.0`
# elsewhere). OUT=FILE writes the component there instead.
set -eu
cd "$(dirname "$0")"
out=${OUT:-js-service.wasm}
componentize-js --wit wit --world-name service -o "$out" app.js
echo "built $out: arcella run $out, or install it with component.toml and deployment.toml"
