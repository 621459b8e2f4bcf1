//! {{name}}: an Arcella HTTP handler. The daemon serves it on its
//! deployment's `[http] listen` address (or `arcella run --serve-http
//! ADDRESS:PORT {{name}}.wasm`), a fresh instance per request, so state
//! that must outlive a request lives in `wasi:keyvalue`: here, a count of
//! requests. `GET /` answers a greeting from `wasi:config`.
//!
//! Edit `answer` below.

wit_bindgen::generate!({ path: "wit", world: "{{name}}", generate_all });

use exports::wasi::http::incoming_handler::Guest;
use wasi::config::store as config;
use wasi::http::types::{Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam};
use wasi::keyvalue::{atomics, store};
use wasi::logging::logging::{Level, log};

struct Handler;

impl Guest for Handler {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let path = request.path_with_query().unwrap_or_default();
        let (status, body) = answer(&request.method(), &path);
        log(Level::Info, "{{name}}", &format!("{path}: {status}"));
        respond(out, status, body.as_bytes());
    }
}

/// The status and body of a response to `method` `path`.
fn answer(method: &Method, path: &str) -> (u16, String) {
    match (method, path) {
        (Method::Get, "/") => {
            let greeting = config::get("greeting").ok().flatten().unwrap_or_else(|| "hello".into());
            let count = store::open("default").and_then(|bucket| atomics::increment(&bucket, "requests", 1));
            match count {
                Ok(n) => (200, format!("{greeting} from {{name}} (request {n})\n")),
                Err(_) => (200, format!("{greeting} from {{name}}\n")),
            }
        }
        _ => (404, "not found\n".to_string()),
    }
}

fn respond(out: ResponseOutparam, status: u16, body: &[u8]) {
    let headers = Fields::new();
    let _ = headers.set("content-type", &[b"text/plain".to_vec()]);
    let response = OutgoingResponse::new(headers);
    let _ = response.set_status_code(status);
    let Ok(outgoing) = response.body() else { return };
    ResponseOutparam::set(out, Ok(response));
    if let Ok(stream) = outgoing.write() {
        for chunk in body.chunks(4096) {
            if stream.blocking_write_and_flush(chunk).is_err() {
                return;
            }
        }
    }
    let _ = OutgoingBody::finish(outgoing, None);
}

export!(Handler);
