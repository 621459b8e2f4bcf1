/* A utility meter as a C service: every `interval_ms` it adds `rate`
 * units to the meter's total, kept in wasi:keyvalue (bucket `default`),
 * so the total goes on across restarts, updates and rollbacks. It reads
 * `meter`, `rate` and `interval_ms` from wasi:config (deployment.toml's
 * [config], or `arcella config c-meter set rate=5` while it runs), logs
 * through wasi:logging at levels, prints `total=N` lines on stdout, and
 * stops when the daemon asks (arcella:service/lifecycle).
 *
 * Without a key-value grant (`arcella run`), it says so and keeps the
 * total in memory. */

#include "bindings.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void say(wasi_logging_logging_level_t level, const char *context, const char *message) {
    bindings_string_t ctx, text;
    bindings_string_set(&ctx, context);
    bindings_string_set(&text, message);
    wasi_logging_logging_log(level, &ctx, &text);
}

/* A [config] value, or `fallback` (a copy either way; the caller frees). */
static char *setting(const char *key, const char *fallback) {
    bindings_string_t name;
    bindings_option_string_t value;
    wasi_config_store_error_t err;
    bindings_string_set(&name, key);
    if (!wasi_config_store_get(&name, &value, &err)) {
        wasi_config_store_error_free(&err);
        return strdup(fallback);
    }
    if (!value.is_some) {
        return strdup(fallback);
    }
    char *text = strndup((const char *)value.val.ptr, value.val.len);
    bindings_string_free(&value.val);
    return text;
}

static unsigned long number(const char *key, unsigned long fallback) {
    char *text = setting(key, "");
    char *end = NULL;
    unsigned long n = strtoul(text, &end, 10);
    bool ok = *text != '\0' && end != NULL && *end == '\0';
    if (*text != '\0' && !ok) {
        char line[200];
        snprintf(line, sizeof line, "`%s` = \"%s\" is not a number; using %lu", key, text, fallback);
        say(WASI_LOGGING_LOGGING_LEVEL_ERROR, "config", line);
    }
    free(text);
    return ok ? n : fallback;
}

/* Why a key-value call failed, in words (frees the error). */
static void describe(wasi_keyvalue_store_error_t *err, char *buf, size_t len) {
    switch (err->tag) {
    case WASI_KEYVALUE_STORE_ERROR_NO_SUCH_STORE:
        snprintf(buf, len, "no such store");
        break;
    case WASI_KEYVALUE_STORE_ERROR_ACCESS_DENIED:
        snprintf(buf, len, "access denied");
        break;
    default:
        snprintf(buf, len, "%.*s", (int)err->val.other.len, (const char *)err->val.other.ptr);
        wasi_keyvalue_store_error_free(err);
    }
}

/* Adds `delta` to `key` in `bucket`: true with the new value in `value`. */
static bool add(wasi_keyvalue_store_own_bucket_t bucket, const char *key, uint64_t delta, uint64_t *value) {
    bindings_string_t name;
    wasi_keyvalue_store_error_t err;
    bindings_string_set(&name, key);
    if (wasi_keyvalue_atomics_increment(wasi_keyvalue_store_borrow_bucket(bucket), &name, delta, value, &err)) {
        return true;
    }
    char why[256], line[320];
    describe(&err, why, sizeof why);
    snprintf(line, sizeof line, "cannot add to `%s`: %s", key, why);
    say(WASI_LOGGING_LOGGING_LEVEL_ERROR, "state", line);
    return false;
}

/* Sleeps `ms` in steps of 50 ms; true once the daemon asked it to stop. */
static bool nap(unsigned long ms) {
    while (ms > 0) {
        if (arcella_service_lifecycle_shutdown_requested()) {
            return true;
        }
        unsigned long step = ms < 50 ? ms : 50;
        usleep(step * 1000);
        ms -= step;
    }
    return arcella_service_lifecycle_shutdown_requested();
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    char line[512];
    char *meter = setting("meter", "meter");
    snprintf(line, sizeof line, "meter %s: rate %lu every %lu ms", meter, number("rate", 1), number("interval_ms", 1000));
    say(WASI_LOGGING_LOGGING_LEVEL_INFO, "config", line);

    bindings_string_t name;
    wasi_keyvalue_store_own_bucket_t bucket;
    wasi_keyvalue_store_error_t err;
    bool stored = false;
    uint64_t total = 0, starts = 0;
    bindings_string_set(&name, "default");
    if (wasi_keyvalue_store_open(&name, &bucket, &err)) {
        stored = add(bucket, "starts", 1, &starts) && add(bucket, "total", 0, &total);
    } else {
        char why[256];
        describe(&err, why, sizeof why);
        snprintf(line, sizeof line, "no key-value state (%s): the total starts at 0 and is not kept", why);
        say(WASI_LOGGING_LOGGING_LEVEL_WARN, "state", line);
    }
    if (stored) {
        snprintf(line, sizeof line, "start %llu, total so far %llu", (unsigned long long)starts, (unsigned long long)total);
        say(WASI_LOGGING_LOGGING_LEVEL_INFO, "state", line);
    }
    for (;;) {
        /* Read every time: `arcella config` changes take effect at once. */
        if (nap(number("interval_ms", 1000))) {
            break;
        }
        unsigned long rate = number("rate", 1);
        if (stored) {
            if (!add(bucket, "total", rate, &total)) {
                continue;
            }
        } else {
            total += rate;
        }
        printf("total=%llu\n", (unsigned long long)total);
        snprintf(line, sizeof line, "%s: total %llu", meter, (unsigned long long)total);
        say(WASI_LOGGING_LOGGING_LEVEL_DEBUG, "meter", line);
    }
    snprintf(line, sizeof line, "stopping at total %llu", (unsigned long long)total);
    say(WASI_LOGGING_LOGGING_LEVEL_INFO, "meter", line);
    if (stored) {
        wasi_keyvalue_store_bucket_drop_own(bucket);
    }
    free(meter);
    return 0;
}
