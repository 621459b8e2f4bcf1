// {{name}}: an Arcella command in JavaScript: it runs to completion, like
// a program on a shell. `arcella run {{name}}.wasm -- ARGS` runs it here;
// installed with `kind = "command"`, the daemon runs it once (and again by
// its restart policy).
//
// It sees its arguments (`[capabilities] args`) and its environment
// (`[capabilities.env]`) through wasi:cli/environment. Its stdout and
// stderr (console.log, console.error) are the module's log
// (`arcella logs {{name}}`).
//
// Edit `run` below. Throwing makes the command fail (exit code 1).

import { getArguments, getEnvironment } from 'wasi:cli/environment@0.2.12';

export const run = {
  run() {
    const args = getArguments().slice(1);
    const env = Object.fromEntries(getEnvironment());
    const who = args.join(' ') || env.WHO || 'world';
    console.log(`hello, ${who}, from {{name}}`);
  },
};
