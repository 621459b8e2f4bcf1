"""{{name}}: a long-running Arcella service in Python.

It logs through wasi:logging (`arcella logs {{name}}`), reads its settings
through wasi:config (`[config]` of deployment.toml, changed at run time by
`arcella config {{name}} set KEY=VALUE`), counts its starts in wasi:keyvalue
(`arcella kv {{name}} get starts`) and ends when the daemon asks it to
(`arcella stop`, or the daemon stopping) through arcella:service/lifecycle.

Edit `work` below: it runs every `interval_ms`.
"""

import time

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import atomics, lifecycle, logging
from wit_world.imports import wasi_config_store as config
from wit_world.imports import wasi_keyvalue_store as store

CONTEXT = "{{name}}"


def log(level: logging.Level, message: str) -> None:
    """A line of the module's log, at `level` (`arcella logs {{name}} --level warn`)."""
    logging.log(level, CONTEXT, message)


def setting(key: str, default: str) -> str:
    """The value of `key` in the module's configuration, else `default`."""
    try:
        value = config.get(key)
    except Err as err:
        log(logging.Level.WARN, f"cannot read config {key}: {err.value}")
        return default
    return default if value is None else value


def count_start() -> None:
    """Adds one to `starts` in bucket `default`, which outlives restarts
    and updates. Without a grant (`arcella run`, or no
    [capabilities.keyvalue] in deployment.toml) the store refuses: say so
    and go on."""
    try:
        bucket = store.open("default")
        starts = atomics.increment(bucket, "starts", 1)
    except Err as err:
        log(logging.Level.WARN, f"no key-value store ({type(err.value).__name__}): starts are not counted")
        return
    log(logging.Level.INFO, f"start number {starts}")


def work(greeting: str, tick: int) -> None:
    """One unit of the service's work: replace with yours."""
    log(logging.Level.INFO, f"{greeting} (tick {tick})")


class Run(exports.Run):
    def run(self) -> None:
        greeting = setting("greeting", "hello from {{name}}")
        log(logging.Level.INFO, f"{{name}} started; greeting: {greeting!r}")
        count_start()
        tick = 0
        while not lifecycle.shutdown_requested():
            tick += 1
            work(setting("greeting", greeting), tick)
            # Sleep in short steps, so that a stop is heard within 100 ms.
            deadline = time.monotonic() + int(setting("interval_ms", "5000")) / 1000
            while time.monotonic() < deadline and not lifecycle.shutdown_requested():
                time.sleep(0.1)
        log(logging.Level.INFO, f"{{name}} stopping after {tick} ticks")
