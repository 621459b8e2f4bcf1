// {{name}}: a long-running Arcella service in JavaScript.
//
// It logs through wasi:logging (`arcella logs {{name}}`), reads its
// settings through wasi:config (`[config]` of deployment.toml, changed at
// run time by `arcella config {{name}} set KEY=VALUE`), counts its starts in
// wasi:keyvalue (`arcella kv {{name}} get starts`) and ends when the daemon
// asks it to (`arcella stop`, or the daemon stopping) through
// arcella:service/lifecycle.
//
// Edit `work` below: it runs every `interval_ms`. Every import is an
// interface of wit/world.wit's world; a WIT error result arrives as an
// exception whose `payload` is the error.

import { log as wasiLog } from 'wasi:logging/logging@0.1.0-draft';
import { get } from 'wasi:config/store@0.2.0-rc.1';
import { open } from 'wasi:keyvalue/store@0.2.0-draft';
import { increment } from 'wasi:keyvalue/atomics@0.2.0-draft';
import { shutdownRequested } from 'arcella:service/lifecycle@0.1.0';
import { subscribeDuration } from 'wasi:clocks/monotonic-clock@0.2.12';

const CONTEXT = '{{name}}';

/** A line of the module's log, at `level` ('info', 'warn', …). */
function log(level, message) {
  wasiLog(level, CONTEXT, message);
}

/** The value of `key` in the module's configuration, else `fallback`. */
function setting(key, fallback) {
  try {
    return get(key) ?? fallback;
  } catch (err) {
    log('warn', `cannot read config ${key}: ${JSON.stringify(err.payload ?? String(err))}`);
    return fallback;
  }
}

/** Adds one to `starts` in bucket `default`, which outlives restarts and
 * updates. Without a grant (`arcella run`, or no [capabilities.keyvalue]
 * in deployment.toml) the store refuses: say so and go on. */
function countStart() {
  try {
    const starts = increment(open('default'), 'starts', 1n);
    log('info', `start number ${starts}`);
  } catch (err) {
    log('warn', `no key-value store (${err.payload?.tag ?? err}): starts are not counted`);
  }
}

/** Blocks for `ms` milliseconds (the component has no event loop of its
 * own while `run` runs: it waits on a WASI clock). */
function sleep(ms) {
  subscribeDuration(BigInt(ms) * 1_000_000n).block();
}

/** One unit of the service's work: replace with yours. */
function work(greeting, tick) {
  log('info', `${greeting} (tick ${tick})`);
}

export const run = {
  run() {
    const greeting = setting('greeting', 'hello from {{name}}');
    log('info', `{{name}} started; greeting: ${JSON.stringify(greeting)}`);
    countStart();
    let tick = 0;
    while (!shutdownRequested()) {
      tick += 1;
      work(setting('greeting', greeting), tick);
      // Sleep in short steps, so that a stop is heard within 100 ms.
      const deadline = Date.now() + Number(setting('interval_ms', '5000'));
      while (Date.now() < deadline && !shutdownRequested()) {
        sleep(100);
      }
    }
    log('info', `{{name}} stopping after ${tick} ticks`);
  },
};
