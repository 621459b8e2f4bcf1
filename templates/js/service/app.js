// A service in JavaScript on Arcella: logs through wasi:logging, reads its
// greeting from wasi:config, counts its starts in wasi:keyvalue, and stops
// when the daemon asks (arcella:service/lifecycle).
//
// Build: ./build.sh (componentize-js against the arcella:platform/service
// world of ../../wit, or of `arcella wit --out wit`).

import { log } from "wasi:logging/logging@0.1.0-draft";
import { get } from "wasi:config/store@0.2.0-rc.1";
import { open } from "wasi:keyvalue/store@0.2.0-draft";
import { increment } from "wasi:keyvalue/atomics@0.2.0-draft";
import { shutdownRequested } from "arcella:service/lifecycle@0.1.0";
import { subscribeDuration } from "wasi:clocks/monotonic-clock@0.2.12";

const LANG = "js";
// Resources (the clock's pollables here) are not collected soon enough to
// stay under the daemon's host handle limit: drop each one when done.
const dispose = Symbol.dispose ?? Symbol.for("dispose");

function greeting() {
  try {
    return get("greeting") ?? "hello";
  } catch (e) {
    log("warn", LANG, `config unreadable: ${e}`);
    return "hello";
  }
}

function serve() {
  let bucket = null;
  let starts = 0n;
  try {
    bucket = open("default");
    starts = increment(bucket, "starts", 1n);
  } catch (e) {
    // `arcella run` grants no store.
    log("warn", LANG, `no key-value store (${JSON.stringify(e)}): counting nothing`);
  }
  let said = greeting();
  const bytes = (s) => new TextEncoder().encode(s);
  bucket?.set("greeting", bytes(said));
  log("info", LANG, `${said} from ${LANG}, start ${starts}`);
  while (!shutdownRequested()) {
    const now = greeting();
    if (now !== said) {
      said = now;
      bucket?.set("greeting", bytes(said));
      log("info", LANG, `greeting is now ${said}`);
    }
    // No sleep in JavaScript without an event loop: block on a clock.
    const pause = subscribeDuration(50_000_000n);
    pause.block();
    pause[dispose]();
  }
  log("info", LANG, "stopping");
}

export const run = { run: serve };
