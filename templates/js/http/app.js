// {{name}}: an HTTP handler for Arcella in JavaScript: it exports
// wasi:http/incoming-handler@0.2.12 (the version the daemon serves) and
// answers through wasi:http/types. (StarlingMonkey's `fetch` event cannot
// be used here: built against this world, componentize-js 0.23 fails with
// "failed to find export of interface `wasi:http/incoming-handler@0.2.12`
// function `handle`".)
//
// The daemon serves it on `[http] listen` of deployment.toml; every
// request gets a fresh instance (nothing is kept in memory between
// requests: keep state in wasi:keyvalue). `arcella run {{name}}.wasm
// --serve-http 127.0.0.1:8080` serves it here.
//
// Edit `respond` below.

import { log } from 'wasi:logging/logging@0.1.0-draft';
import { get } from 'wasi:config/store@0.2.0-rc.1';
import { Fields, OutgoingBody, OutgoingResponse, ResponseOutparam } from 'wasi:http/types@0.2.12';

const utf8 = new TextEncoder();

/** The status and text body for a request of `path`: replace with yours. */
function respond(path) {
  let greeting = 'hello';
  try {
    greeting = get('greeting') ?? greeting;
  } catch {
    // No configuration: keep the default.
  }
  return [200, `${greeting} from {{name}}: you asked for ${path}\n`];
}

export const incomingHandler = {
  handle(request, responseOut) {
    const path = request.pathWithQuery() ?? '/';
    const [status, text] = respond(path);
    log('info', '{{name}}', `${path}: ${status}`);
    const response = new OutgoingResponse(
      Fields.fromList([['content-type', utf8.encode('text/plain; charset=utf-8')]]),
    );
    response.setStatusCode(status);
    const body = response.body();
    ResponseOutparam.set(responseOut, { tag: 'ok', val: response });
    const stream = body.write();
    stream.blockingWriteAndFlush(utf8.encode(text));
    stream[Symbol.dispose]();
    OutgoingBody.finish(body, undefined);
  },
};
