/* {{name}}: an Arcella provider of typed calls in C (docs/typed-calls.md).
 * It exports local:{{name}}/api@0.1.0 (wit/world.wit); other modules
 * import that interface and the daemon links their calls to this module,
 * kept ready (kind = "provider"). Each greet counts itself in
 * wasi:keyvalue and logs through wasi:logging.
 *
 * Edit the interface in wit/world.wit, run ./bindgen.sh, then implement
 * what bindings/bindings.h declares under "Exported Functions". */

#include "bindings.h"

#include <stdio.h>
#include <stdlib.h>

static void say(wasi_logging_logging_level_t level, const char *message) {
    bindings_string_t context, text;
    bindings_string_set(&context, "{{name}}");
    bindings_string_set(&text, message);
    wasi_logging_logging_log(level, &context, &text);
}

/* One more greeting in the bucket `default`: the count, or 0. */
static uint64_t count_call(void) {
    bindings_string_t name, key;
    wasi_keyvalue_store_own_bucket_t bucket;
    wasi_keyvalue_store_error_t err;
    bindings_string_set(&name, "default");
    if (!wasi_keyvalue_store_open(&name, &bucket, &err)) {
        wasi_keyvalue_store_error_free(&err);
        return 0;
    }
    uint64_t calls = 0;
    bindings_string_set(&key, "greetings");
    if (!wasi_keyvalue_atomics_increment(wasi_keyvalue_store_borrow_bucket(bucket), &key, 1, &calls, &err)) {
        wasi_keyvalue_store_error_free(&err);
        calls = 0;
    }
    wasi_keyvalue_store_bucket_drop_own(bucket);
    return calls;
}

/* greet(who) -> string. `who` belongs to the bindings (they free it);
 * `ret` must be malloc'd: the bindings free it once the caller has it. */
void exports_local_{{name_snake}}_api_greet(bindings_string_t *who, bindings_string_t *ret) {
    uint64_t calls = count_call();
    char text[512];
    int len;
    if (calls > 0) {
        len = snprintf(text, sizeof text, "hello, %.*s (greeting %llu)", (int)who->len, (const char *)who->ptr,
                       (unsigned long long)calls);
    } else {
        len = snprintf(text, sizeof text, "hello, %.*s", (int)who->len, (const char *)who->ptr);
        say(WASI_LOGGING_LOGGING_LEVEL_WARN, "no key-value state, call not counted");
    }
    say(WASI_LOGGING_LOGGING_LEVEL_INFO, text);
    bindings_string_dup_n(ret, text, len < (int)sizeof text ? (size_t)len : sizeof text - 1);
}
