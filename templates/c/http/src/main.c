/* {{name}}: an HTTP handler for Arcella in C (wasi:http 0.2). It exports
 * wasi:http/incoming-handler: the daemon serves it on `[http] listen` of
 * deployment.toml (or `arcella run {{name}}.wasm --serve-http
 * 127.0.0.1:8080` here), a fresh instance per request, so nothing is kept
 * in memory between requests. It reads its greeting from wasi:config
 * (deployment.toml's [config], changed at run time with `arcella config
 * {{name}} set greeting=hi`) and logs each request through wasi:logging
 * (`arcella logs {{name}}`).
 *
 * Edit respond() below; handle() drives the wasi:http resources (request,
 * response, body, stream) for it. The calls come from bindings/bindings.h. */

#include "bindings.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The value of `key` in [config] (or set by the operator), or NULL; the
 * caller frees it. */
static char *setting(const char *key) {
    bindings_string_t name;
    bindings_option_string_t value;
    wasi_config_store_error_t err;
    bindings_string_set(&name, key);
    if (!wasi_config_store_get(&name, &value, &err)) {
        wasi_config_store_error_free(&err);
        return NULL;
    }
    if (!value.is_some) {
        return NULL;
    }
    char *text = strndup((const char *)value.val.ptr, value.val.len);
    bindings_string_free(&value.val);
    return text;
}

/* The status and text body (into `body`, `len` bytes) for a request of
 * `path`: replace with yours. */
static unsigned respond(const char *path, char *body, size_t len) {
    char *greeting = setting("greeting");
    snprintf(body, len, "%s from {{name}}: you asked for %s\n", greeting ? greeting : "hello", path);
    free(greeting);
    return 200;
}

/* Writes `len` bytes of `text` to an outgoing body, in the chunks of at
 * most 4096 bytes that blocking-write-and-flush takes; false on a failed
 * write (the client went away). */
static bool write_all(wasi_http_types_borrow_outgoing_body_t body, const char *text, size_t len) {
    wasi_http_types_own_output_stream_t stream;
    if (!wasi_http_types_method_outgoing_body_write(body, &stream)) {
        return false;
    }
    bool ok = true;
    for (size_t done = 0; ok && done < len;) {
        size_t chunk = len - done < 4096 ? len - done : 4096;
        bindings_list_u8_t bytes = {(uint8_t *)text + done, chunk};
        wasi_io_streams_stream_error_t err;
        ok = wasi_io_streams_method_output_stream_blocking_write_and_flush(
            wasi_io_streams_borrow_output_stream(stream), &bytes, &err);
        if (!ok) {
            wasi_io_streams_stream_error_free(&err);
        }
        done += chunk;
    }
    /* The stream is the body's child: it goes before the body is finished. */
    wasi_io_streams_output_stream_drop_own(stream);
    return ok;
}

void exports_wasi_http_incoming_handler_handle(exports_wasi_http_incoming_handler_own_incoming_request_t request,
                                               exports_wasi_http_incoming_handler_own_response_outparam_t response_out) {
    bindings_string_t raw;
    char path[1024] = "/";
    if (wasi_http_types_method_incoming_request_path_with_query(wasi_http_types_borrow_incoming_request(request),
                                                                &raw)) {
        snprintf(path, sizeof path, "%.*s", (int)raw.len, (const char *)raw.ptr);
        bindings_string_free(&raw);
    }
    wasi_http_types_incoming_request_drop_own(request);

    char text[2048];
    unsigned status = respond(path, text, sizeof text);

    char line[1100];
    bindings_string_t context, message;
    snprintf(line, sizeof line, "%s: %u", path, status);
    bindings_string_set(&context, "{{name}}");
    bindings_string_set(&message, line);
    wasi_logging_logging_log(WASI_LOGGING_LOGGING_LEVEL_INFO, &context, &message);

    /* Headers, then the response with its status, then its body: handed
     * to the daemon before the body is written, as wasi:http wants. */
    wasi_http_types_tuple2_field_name_field_value_t header;
    bindings_string_set(&header.f0, "content-type");
    header.f1.ptr = (uint8_t *)"text/plain; charset=utf-8";
    header.f1.len = strlen("text/plain; charset=utf-8");
    wasi_http_types_list_tuple2_field_name_field_value_t entries = {&header, 1};
    wasi_http_types_own_fields_t headers;
    wasi_http_types_header_error_t header_err;
    if (!wasi_http_types_static_fields_from_list(&entries, &headers, &header_err)) {
        wasi_http_types_header_error_free(&header_err);
        headers = wasi_http_types_constructor_fields();
    }
    wasi_http_types_own_outgoing_response_t response = wasi_http_types_constructor_outgoing_response(headers);
    wasi_http_types_borrow_outgoing_response_t borrowed = wasi_http_types_borrow_outgoing_response(response);
    wasi_http_types_method_outgoing_response_set_status_code(borrowed, (wasi_http_types_status_code_t)status);
    wasi_http_types_own_outgoing_body_t body;
    bool has_body = wasi_http_types_method_outgoing_response_body(borrowed, &body);
    wasi_http_types_result_own_outgoing_response_error_code_t result = {.is_err = false, .val = {.ok = response}};
    wasi_http_types_static_response_outparam_set(response_out, &result);
    if (!has_body) {
        return;
    }
    write_all(wasi_http_types_borrow_outgoing_body(body), text, strlen(text));
    wasi_http_types_error_code_t finish_err;
    if (!wasi_http_types_static_outgoing_body_finish(body, NULL, &finish_err)) {
        wasi_http_types_error_code_free(&finish_err);
    }
}
