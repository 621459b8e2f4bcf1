// {{name}}: a provider of typed calls in JavaScript (docs/typed-calls.md).
//
// It exports `local:{{name}}/api@0.1.0` (wit/world.wit); other modules
// import that interface and the daemon links their calls to this module,
// checking every value against the types of the WIT. The daemon keeps its
// instance ready (`kind = "provider"`): there is no `run`, and state in
// memory lives as long as the instance; what must outlive it goes to
// wasi:keyvalue.
//
// Edit `api` below, with the interface in wit/world.wit.

import { log } from 'wasi:logging/logging@0.1.0-draft';
import { open } from 'wasi:keyvalue/store@0.2.0-draft';
import { increment } from 'wasi:keyvalue/atomics@0.2.0-draft';

export const api = {
  greet(who) {
    let calls = 0n;
    try {
      calls = increment(open('default'), 'calls', 1n);
    } catch (err) {
      log('warn', '{{name}}', `calls are not counted: ${err.payload?.tag ?? err}`);
    }
    log('info', '{{name}}', `greet(${JSON.stringify(who)}), call ${calls}`);
    return `hello, ${who} (call ${calls})`;
  },
};
