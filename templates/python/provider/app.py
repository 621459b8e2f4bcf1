"""{{name}}: a provider of typed calls in Python (docs/typed-calls.md).

It exports `local:{{name}}/api@0.1.0` (wit/world.wit); other modules import
that interface and the daemon links their calls to this module, checking
every value against the types of the WIT. The daemon keeps its instance
ready (`kind = "provider"`): there is no `run`, and state in memory lives
as long as the instance; what must outlive it goes to wasi:keyvalue.

Edit `Api` below, with the interface in wit/world.wit.
"""

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import atomics, logging
from wit_world.imports import wasi_keyvalue_store as store


class Api(exports.Api):
    def greet(self, who: str) -> str:
        try:
            calls = atomics.increment(store.open("default"), "calls", 1)
        except Err as err:
            logging.log(logging.Level.WARN, "{{name}}", f"calls are not counted: {type(err.value).__name__}")
            calls = 0
        logging.log(logging.Level.INFO, "{{name}}", f"greet({who!r}), call {calls}")
        return f"hello, {who} (call {calls})"
