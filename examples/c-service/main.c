// A service in C on Arcella: logs through wasi:logging, reads its greeting
// from wasi:config, counts its starts in wasi:keyvalue, and stops when the
// daemon asks (arcella:service/lifecycle). Bindings (service.h, service.c)
// come from `wit-bindgen c` for the arcella:platform/service world in wit/;
// this file implements its export, wasi:cli/run.

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "service.h"

#define LANG "c"

static void say(wasi_logging_logging_level_t level, const char *message) {
    service_string_t context, text;
    service_string_set(&context, LANG);
    service_string_set(&text, message);
    wasi_logging_logging_log(level, &context, &text);
}

// The config value `greeting` into `out` ("hello" when unset or unreadable).
static void greeting(char *out, size_t size) {
    service_string_t key;
    service_option_string_t value;
    wasi_config_store_error_t err;
    service_string_set(&key, "greeting");
    snprintf(out, size, "hello");
    if (!wasi_config_store_get(&key, &value, &err)) {
        say(WASI_LOGGING_LOGGING_LEVEL_WARN, "config unreadable");
        wasi_config_store_error_free(&err);
    } else if (value.is_some) {
        snprintf(out, size, "%.*s", (int)value.val.len, (const char *)value.val.ptr);
        service_option_string_free(&value);
    }
}

static void remember(wasi_keyvalue_store_own_bucket_t *bucket, bool have, const char *said) {
    if (!have) {
        return;
    }
    service_string_t key;
    service_list_u8_t value = {(uint8_t *)said, strlen(said)};
    wasi_keyvalue_store_error_t err;
    service_string_set(&key, "greeting");
    if (!wasi_keyvalue_store_method_bucket_set(wasi_keyvalue_store_borrow_bucket(*bucket), &key, &value, &err)) {
        wasi_keyvalue_store_error_free(&err);
    }
}

bool exports_wasi_cli_run_run(void) {
    char line[512], said[256], now[256];
    service_string_t name, key;
    wasi_keyvalue_store_own_bucket_t bucket;
    wasi_keyvalue_store_error_t err;
    uint64_t starts = 0;
    service_string_set(&name, "default");
    service_string_set(&key, "starts");
    // `arcella run` grants no store: then it counts nothing.
    bool have = wasi_keyvalue_store_open(&name, &bucket, &err);
    if (have && !wasi_keyvalue_atomics_increment(wasi_keyvalue_store_borrow_bucket(bucket), &key, 1, &starts, &err)) {
        wasi_keyvalue_store_bucket_drop_own(bucket);
        have = false;
    }
    if (!have) {
        say(WASI_LOGGING_LOGGING_LEVEL_WARN, "no key-value store: counting nothing");
        wasi_keyvalue_store_error_free(&err);
    }
    greeting(said, sizeof said);
    remember(&bucket, have, said);
    snprintf(line, sizeof line, "%s from %s, start %llu", said, LANG, (unsigned long long)starts);
    say(WASI_LOGGING_LOGGING_LEVEL_INFO, line);
    const struct timespec pause = {0, 50 * 1000 * 1000};
    while (!arcella_service_lifecycle_shutdown_requested()) {
        greeting(now, sizeof now);
        if (strcmp(now, said) != 0) {
            snprintf(said, sizeof said, "%s", now);
            remember(&bucket, have, said);
            snprintf(line, sizeof line, "greeting is now %s", said);
            say(WASI_LOGGING_LOGGING_LEVEL_INFO, line);
        }
        nanosleep(&pause, NULL);
    }
    say(WASI_LOGGING_LOGGING_LEVEL_INFO, "stopping");
    if (have) {
        wasi_keyvalue_store_bucket_drop_own(bucket);
    }
    return true;
}
