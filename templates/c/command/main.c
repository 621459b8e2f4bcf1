// A command in C on Arcella: runs to completion, printing its arguments.
// Bindings (command.h, command.c) come from `wit-bindgen c` for the
// arcella:platform/command world in wit/; this file implements its export,
// wasi:cli/run.

#include <stdio.h>

#include "command.h"

bool exports_wasi_cli_run_run(void) {
    command_list_string_t args;
    wasi_cli_environment_get_arguments(&args);
    printf("hello from c, args [");
    for (size_t i = 0; i < args.len; i++) {
        printf("%s\"%.*s\"", i ? ", " : "", (int)args.ptr[i].len, (const char *)args.ptr[i].ptr);
    }
    printf("]\n");
    command_list_string_free(&args);
    return true;
}
