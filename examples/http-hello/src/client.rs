//! One outgoing request through `wasi:http/outgoing-handler`: the host
//! decides whether the address may be reached ([capabilities.network]
//! connect in deployment.toml, or `arcella run --connect`).

use wasip2::http::outgoing_handler;
use wasip2::http::types::{ErrorCode, Fields, IncomingBody, OutgoingRequest, Scheme};
use wasip2::io::streams::StreamError;

/// GETs `url` (http:// or https://): the status and the body.
pub fn get(url: &str) -> Result<(u16, Vec<u8>), ErrorCode> {
    let (scheme, rest) = match url.split_once("://") {
        Some(("https", rest)) => (Scheme::Https, rest),
        Some(("http", rest)) => (Scheme::Http, rest),
        _ => return Err(ErrorCode::HttpRequestUriInvalid),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let request = OutgoingRequest::new(Fields::new());
    let set = request
        .set_scheme(Some(&scheme))
        .and(request.set_authority(Some(authority)))
        .and(request.set_path_with_query(Some(path)));
    if set.is_err() {
        return Err(ErrorCode::HttpRequestUriInvalid);
    }
    let pending = outgoing_handler::handle(request, None)?;
    let response = loop {
        match pending.get() {
            Some(Ok(result)) => break result?,
            Some(Err(())) => return Err(ErrorCode::InternalError(Some("response taken twice".into()))),
            None => pending.subscribe().block(),
        }
    };
    let status = response.status();
    let body = response.consume().map_err(|()| ErrorCode::InternalError(None))?;
    Ok((status, read_all(body)?))
}

/// Every byte of an incoming body.
pub fn read_all(body: IncomingBody) -> Result<Vec<u8>, ErrorCode> {
    let mut bytes = Vec::new();
    {
        let stream = body.stream().map_err(|()| ErrorCode::InternalError(None))?;
        loop {
            match stream.blocking_read(64 * 1024) {
                Ok(chunk) => bytes.extend_from_slice(&chunk),
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(e)) => {
                    return Err(ErrorCode::InternalError(Some(e.to_debug_string())));
                }
            }
        }
    }
    IncomingBody::finish(body);
    Ok(bytes)
}
