"""python-room-monitor: a Python service that keeps a room at a target
temperature through typed calls to the Rust `room-sensor` provider of
examples/thermostat (docs/typed-calls.md).

Every `interval_ms` it calls `room.read()` (the daemon links the call to
the provider, checking every value against the WIT types), switches the
heater with `room.heat(on)` towards `target` (wasi:config: `[config]` of
deployment.toml, or `arcella config python-room-monitor set target=23`),
logs the reading (wasi:logging) and keeps the number of readings and the
last one in key-value state (wasi:keyvalue), so that a restart goes on
counting. It stops when the daemon asks (arcella:service/lifecycle).
"""

import time

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import atomics, lifecycle, logging, room
from wit_world.imports import wasi_config_store as config
from wit_world.imports import wasi_keyvalue_store as store

CONTEXT = "room-monitor"
# Degrees either side of the target within which the heater is left as it is.
HYSTERESIS = 0.2


def log(level: logging.Level, message: str) -> None:
    logging.log(level, CONTEXT, message)


def setting(key: str, default: float) -> float:
    """A number from the configuration, else `default` (a bad value is logged)."""
    try:
        value = config.get(key)
    except Err as err:
        log(logging.Level.WARN, f"cannot read config {key}: {err.value}")
        return default
    if value is None:
        return default
    try:
        return float(value)
    except ValueError:
        log(logging.Level.WARN, f"config {key} = {value!r} is not a number; using {default}")
        return default


def open_bucket() -> store.Bucket | None:
    """Bucket `default`, or None without a key-value grant (as under `arcella run`)."""
    try:
        return store.open("default")
    except Err as err:
        log(logging.Level.WARN, f"no key-value store ({type(err.value).__name__}): readings are not kept")
        return None


def keep(bucket: store.Bucket | None, reading: room.Reading) -> int:
    """Counts the reading and keeps it as `last`; the count so far (0 without a store)."""
    if bucket is None:
        return 0
    count = atomics.increment(bucket, "readings", 1)
    bucket.set("last", f"{reading.celsius:.1f}".encode())
    return count


class Run(exports.Run):
    def run(self) -> None:
        bucket = open_bucket()
        if bucket is not None:
            last = bucket.get("last")
            if last is not None:
                log(logging.Level.INFO, f"resuming; the last reading was {last.decode()} °C")
        while not lifecycle.shutdown_requested():
            target = setting("target", 21.0)
            reading = room.read()
            heat = reading.heating
            if reading.celsius < target - HYSTERESIS:
                heat = True
            elif reading.celsius > target + HYSTERESIS:
                heat = False
            if heat != reading.heating:
                room.heat(heat)
            count = keep(bucket, reading)
            log(
                logging.Level.INFO,
                f"{reading.celsius:.1f} °C, heater {'on' if heat else 'off'} "
                f"(target {target:.1f} °C, reading {count})",
            )
            deadline = time.monotonic() + setting("interval_ms", 1000) / 1000
            while time.monotonic() < deadline and not lifecycle.shutdown_requested():
                time.sleep(0.05)
        log(logging.Level.INFO, "stopping")
