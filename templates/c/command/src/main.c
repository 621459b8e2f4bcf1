/* {{name}}: an Arcella command in C, a program that runs to completion
 * (`arcella run {{name}}.wasm ARGS...`, or installed with
 * `kind = "command"`). Its arguments, environment, clocks and granted
 * directories come through wasi-libc; its exit status is main's. It also
 * logs a line through wasi:logging (bindings/bindings.h).
 *
 * Edit main(); add imports to wit/world.wit, then ./bindgen.sh. */

#include "bindings.h"

#include <stdio.h>

int main(int argc, char **argv) {
    printf("hello, ");
    if (argc < 2) {
        printf("world");
    }
    for (int i = 1; i < argc; i++) {
        printf("%s%s", i > 1 ? " " : "", argv[i]);
    }
    printf(", from {{name}}\n");
    bindings_string_t context, message;
    bindings_string_set(&context, "{{name}}");
    bindings_string_set(&message, "done");
    wasi_logging_logging_log(WASI_LOGGING_LOGGING_LEVEL_INFO, &context, &message);
    return 0;
}
