/* {{name}}: a long-running Arcella service in C. It reads its settings
 * from wasi:config (deployment.toml's [config], changed at run time with
 * `arcella config {{name}} set KEY=VALUE`), counts its starts in
 * wasi:keyvalue (the count survives restarts and updates), logs through
 * wasi:logging (`arcella logs {{name}}`), and ticks until the daemon asks
 * it to stop (arcella:service/lifecycle).
 *
 * Edit work() below. The Arcella calls come from bindings/bindings.h;
 * files, clocks and stdout from wasi-libc. */

#include "bindings.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void say(wasi_logging_logging_level_t level, const char *message) {
    bindings_string_t context, text;
    bindings_string_set(&context, "{{name}}");
    bindings_string_set(&text, message);
    wasi_logging_logging_log(level, &context, &text);
}

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

/* Why a key-value call failed, in words. */
static const char *kv_error(wasi_keyvalue_store_error_t *err, char *buf, size_t len) {
    switch (err->tag) {
    case WASI_KEYVALUE_STORE_ERROR_NO_SUCH_STORE:
        return "no such store";
    case WASI_KEYVALUE_STORE_ERROR_ACCESS_DENIED:
        return "access denied (grant [capabilities.keyvalue] in deployment.toml)";
    default:
        snprintf(buf, len, "%.*s", (int)err->val.other.len, (const char *)err->val.other.ptr);
        wasi_keyvalue_store_error_free(err);
        return buf;
    }
}

/* Adds one to the count of starts in the bucket `default`: the count, or
 * 0 with `why` filled in. */
static uint64_t count_start(char *why, size_t len) {
    bindings_string_t name, key;
    wasi_keyvalue_store_own_bucket_t bucket;
    wasi_keyvalue_store_error_t err;
    char buf[256];
    bindings_string_set(&name, "default");
    if (!wasi_keyvalue_store_open(&name, &bucket, &err)) {
        snprintf(why, len, "%s", kv_error(&err, buf, sizeof buf));
        return 0;
    }
    uint64_t starts = 0;
    bindings_string_set(&key, "starts");
    if (!wasi_keyvalue_atomics_increment(wasi_keyvalue_store_borrow_bucket(bucket), &key, 1, &starts, &err)) {
        snprintf(why, len, "%s", kv_error(&err, buf, sizeof buf));
        starts = 0;
    }
    wasi_keyvalue_store_bucket_drop_own(bucket);
    return starts;
}

/* Sleeps `ms`, waking every 100 ms to see whether the daemon asked the
 * service to stop; true if it did. */
static bool nap(unsigned long ms) {
    while (ms > 0) {
        if (arcella_service_lifecycle_shutdown_requested()) {
            return true;
        }
        unsigned long step = ms < 100 ? ms : 100;
        usleep(step * 1000);
        ms -= step;
    }
    return arcella_service_lifecycle_shutdown_requested();
}

/* What the service does every `interval_ms`: your code goes here. */
static void work(unsigned long ticks) {
    char line[64];
    snprintf(line, sizeof line, "tick %lu", ticks);
    say(WASI_LOGGING_LOGGING_LEVEL_DEBUG, line);
}

int main(void) {
    /* Line by line: the daemon reads stdout as lines, as they come. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    char line[512];
    char *greeting = setting("greeting");
    snprintf(line, sizeof line, "config: greeting = \"%s\"", greeting ? greeting : "hello");
    say(WASI_LOGGING_LOGGING_LEVEL_INFO, line);
    /* Under `arcella run` no key-value store is granted: the service says
     * so and goes on without its count. */
    char why[300];
    uint64_t starts = count_start(why, sizeof why);
    if (starts > 0) {
        snprintf(line, sizeof line, "start number %llu", (unsigned long long)starts);
        say(WASI_LOGGING_LOGGING_LEVEL_INFO, line);
    } else {
        snprintf(line, sizeof line, "no key-value state, starts not counted: %s", why);
        say(WASI_LOGGING_LOGGING_LEVEL_WARN, line);
    }
    printf("%s from {{name}}\n", greeting ? greeting : "hello");
    free(greeting);
    unsigned long ticks = 0;
    for (;;) {
        /* Read at every tick: `arcella config` takes effect at once. */
        char *interval = setting("interval_ms");
        unsigned long ms = interval ? strtoul(interval, NULL, 10) : 0;
        free(interval);
        if (nap(ms > 0 ? ms : 1000)) {
            break;
        }
        work(++ticks);
    }
    snprintf(line, sizeof line, "stopping after %lu ticks", ticks);
    say(WASI_LOGGING_LOGGING_LEVEL_INFO, line);
    return 0;
}
