// A command in JavaScript on Arcella: runs to completion, printing its
// arguments. Built against the arcella:platform/command world (wit/).

import { getArguments } from "wasi:cli/environment@0.2.12";

function main() {
  console.log(`hello from js, args ${JSON.stringify(getArguments())}`);
}

export const run = { run: main };
