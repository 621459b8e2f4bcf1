"""A service in Python on Arcella: logs through wasi:logging, reads its
greeting from wasi:config, counts its starts in wasi:keyvalue, and stops
when the daemon asks (arcella:service/lifecycle).

Build: ./build.sh (componentize-py against the arcella:platform/service
world of ../../wit, or of `arcella wit --out wit`)."""

import time

from wit_world import exports
from wit_world.imports import atomics, lifecycle, logging, wasi_config_store, wasi_keyvalue_store
from wit_world.imports.logging import Level

LANG = "python"


def greeting() -> str:
    try:
        return wasi_config_store.get("greeting") or "hello"
    except Exception as e:  # wasi:config/store error
        logging.log(Level.WARN, LANG, f"config unreadable: {e}")
        return "hello"


class Run(exports.Run):
    def run(self) -> None:
        try:
            bucket = wasi_keyvalue_store.open("default")
            starts = atomics.increment(bucket, "starts", 1)
        except Exception as e:  # `arcella run` grants no store
            logging.log(Level.WARN, LANG, f"no key-value store ({e}): counting nothing")
            bucket, starts = None, 0
        said = greeting()
        if bucket:
            bucket.set("greeting", said.encode())
        logging.log(Level.INFO, LANG, f"{said} from {LANG}, start {starts}")
        while not lifecycle.shutdown_requested():
            now = greeting()
            if now != said:
                said = now
                if bucket:
                    bucket.set("greeting", said.encode())
                logging.log(Level.INFO, LANG, f"greeting is now {said}")
            time.sleep(0.05)
        logging.log(Level.INFO, LANG, "stopping")
