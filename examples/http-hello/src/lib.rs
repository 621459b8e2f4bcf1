//! An HTTP service for Arcella, served by the daemon on its deployment's
//! `[http] listen` address; each request runs in a fresh instance.
//!
//! - `GET /` answers a greeting;
//! - `POST /echo` answers the request's body (read whole into memory: a
//!   body larger than `limits.memory` ends the request with 500);
//! - `GET /fetch?URL` fetches URL through wasi:http (under the module's
//!   `[capabilities.network] connect` rules) and answers what came back;
//! - `GET /trap` and `GET /hang` misbehave on purpose (500, and 504 after
//!   `[http] request_timeout`), for the tests.

mod client;

use wasip2::exports::http::incoming_handler::Guest;
use wasip2::http::types::{Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam};

struct Hello;

impl Guest for Hello {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let path = request.path_with_query().unwrap_or_default();
        match (request.method(), path.as_str()) {
            (Method::Get, "/") => respond(out, 200, b"hello from arcella over http\n"),
            (Method::Post, "/echo") => {
                let body = request.consume().ok().map(client::read_all);
                match body {
                    Some(Ok(bytes)) => respond(out, 200, &bytes),
                    _ => respond(out, 400, b"no body\n"),
                }
            }
            (Method::Get, p) if p.starts_with("/fetch?") => match client::get(&p["/fetch?".len()..]) {
                Ok((status, body)) => {
                    let text = format!("upstream {status}: {}", String::from_utf8_lossy(&body));
                    respond(out, 200, text.as_bytes());
                }
                Err(e) => respond(out, 502, format!("upstream error: {e:?}\n").as_bytes()),
            },
            (Method::Get, "/trap") => panic!("asked to trap"),
            (Method::Get, "/hang") => {
                #[allow(clippy::empty_loop)]
                loop {}
            }
            _ => respond(out, 404, b"not found\n"),
        }
    }
}

/// Sends `status` and `body` (written 4 KiB at a time, what one
/// blocking write may take).
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

wasip2::http::proxy::export!(Hello);
