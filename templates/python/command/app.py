"""{{name}}: an Arcella command in Python: it runs to completion, like a
program on a shell. `arcella run {{name}}.wasm -- ARGS` runs it here;
installed with `kind = "command"`, the daemon runs it once (and again by
its restart policy).

It sees its arguments (`[capabilities] args`), its environment
(`[capabilities.env]`) and the directories granted to it (`[[capabilities.dirs]]`).
Its stdout and stderr are the module's log (`arcella logs {{name}}`).

Edit `Run.run` below. Raising SystemExit(1) (or `sys.exit(1)`) makes it fail.
"""

import os
import sys

from wit_world import exports


class Run(exports.Run):
    def run(self) -> None:
        who = " ".join(sys.argv[1:]) or os.environ.get("WHO", "world")
        print(f"hello, {who}, from {{name}}")
