#!/usr/bin/env bash
# Generates bindings/bindings.{c,h} again from wit/world.wit, after you
# changed the world (an import added, the interface of a provider).
# Needs wit-bindgen-cli 0.61.1, C generator only:
#     cargo install wit-bindgen-cli --version 0.61.1 --locked --no-default-features --features c
set -euo pipefail
cd "$(dirname "$0")"
"${WIT_BINDGEN:-wit-bindgen}" c wit --world {{name}} --rename-world bindings --no-object-file --out-dir bindings
