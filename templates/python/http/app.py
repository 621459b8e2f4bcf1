"""{{name}}: an HTTP handler for Arcella in Python (wasi:http 0.2).

The daemon serves it on `[http] listen` of deployment.toml; every request
gets a fresh instance (nothing is kept in memory between requests: keep
state in wasi:keyvalue). `arcella run {{name}}.wasm --serve-http
127.0.0.1:8080` serves it here.

Edit `respond` below.
"""

from componentize_py_types import Err, Ok
from wit_world import exports
from wit_world.imports import logging
from wit_world.imports import wasi_config_store as config
from wit_world.imports.wasi_http_types import (
    Fields,
    IncomingRequest,
    OutgoingBody,
    OutgoingResponse,
    ResponseOutparam,
)


def respond(path: str) -> tuple[int, str]:
    """The status and text body for a GET of `path`: replace with yours."""
    try:
        greeting = config.get("greeting") or "hello"
    except Err:
        greeting = "hello"
    return 200, f"{greeting} from {{name}}: you asked for {path}\n"


class IncomingHandler(exports.IncomingHandler):
    def handle(self, request: IncomingRequest, response_out: ResponseOutparam) -> None:
        path = request.path_with_query() or "/"
        status, text = respond(path)
        logging.log(logging.Level.INFO, "{{name}}", f"{path}: {status}")
        response = OutgoingResponse(Fields.from_list([("content-type", b"text/plain; charset=utf-8")]))
        response.set_status_code(status)
        body = response.body()
        ResponseOutparam.set(response_out, Ok(response))
        with body.write() as stream:
            stream.blocking_write_and_flush(text.encode())
        OutgoingBody.finish(body, None)
