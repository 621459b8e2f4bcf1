/*
 * arcella-bench-wasm3 FILE.wasm: runs a WASI preview-1 command in wasm3
 * 0.5.0 as wasm3's own command-line app does (platforms/app/main.c: parse,
 * load, link, call _start; 64 KiB value stack), with the five imports the
 * bench guests use (environ_get, environ_sizes_get, clock_time_get,
 * fd_write, proc_exit), written here as for the wasmi runner: the wasm3
 * source on the registries (pywasm3's sdist) leaves out its WASI files.
 * Exits with the guest's exit code. Built by scripts/bench-peers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "wasm3.h"

#define WASI "wasi_snapshot_preview1"
#define STACK_SIZE (64 * 1024) /* wasm3's app default (--stack-size) */
#define EBADF 8
#define EINVAL 28

static int exit_code;

m3ApiRawFunction(environ_sizes_get) {
    m3ApiReturnType(uint32_t);
    m3ApiGetArgMem(uint32_t *, count);
    m3ApiGetArgMem(uint32_t *, size);
    m3ApiCheckMem(count, 4);
    m3ApiCheckMem(size, 4);
    m3ApiWriteMem32(count, 0);
    m3ApiWriteMem32(size, 0);
    m3ApiReturn(0);
}

m3ApiRawFunction(environ_get) {
    m3ApiReturnType(uint32_t);
    m3ApiReturn(0);
}

m3ApiRawFunction(clock_time_get) {
    m3ApiReturnType(uint32_t);
    m3ApiGetArg(uint32_t, id);
    m3ApiGetArg(uint64_t, precision);
    m3ApiGetArgMem(uint64_t *, out);
    (void)precision;
    m3ApiCheckMem(out, 8);
    struct timespec ts;
    if (id > 1 || clock_gettime(id == 0 ? CLOCK_REALTIME : CLOCK_MONOTONIC, &ts) != 0) m3ApiReturn(EINVAL);
    m3ApiWriteMem64(out, (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec);
    m3ApiReturn(0);
}

m3ApiRawFunction(fd_write) {
    m3ApiReturnType(uint32_t);
    m3ApiGetArg(uint32_t, fd);
    m3ApiGetArgMem(uint32_t *, iovs);
    m3ApiGetArg(uint32_t, len);
    m3ApiGetArgMem(uint32_t *, written);
    m3ApiCheckMem(iovs, (uint64_t)len * 8);
    m3ApiCheckMem(written, 4);
    if (fd != 1 && fd != 2) m3ApiReturn(EBADF);
    uint32_t total = 0;
    for (uint32_t i = 0; i < len; i++) {
        uint8_t *buf = m3ApiOffsetToPtr(m3ApiReadMem32(&iovs[2 * i]));
        uint32_t n = m3ApiReadMem32(&iovs[2 * i + 1]);
        m3ApiCheckMem(buf, n);
        if (fwrite(buf, 1, n, fd == 1 ? stdout : stderr) != n) m3ApiReturn(29); /* EIO */
        total += n;
    }
    m3ApiWriteMem32(written, total);
    m3ApiReturn(0);
}

m3ApiRawFunction(proc_exit) {
    m3ApiGetArg(uint32_t, code);
    exit_code = (int)code;
    m3ApiTrap(m3Err_trapExit);
}

static int fail(const char *file, const char *what, M3Result result) {
    fprintf(stderr, "arcella-bench-wasm3: %s: %s: %s\n", file, what, result);
    return 1;
}

static unsigned char *read_file(const char *file, size_t *size) {
    FILE *f = fopen(file, "rb");
    if (!f) return NULL;
    unsigned char *bytes = NULL;
    if (fseek(f, 0, SEEK_END) == 0) {
        long len = ftell(f);
        bytes = len > 0 && fseek(f, 0, SEEK_SET) == 0 ? malloc((size_t)len) : NULL;
        if (bytes && fread(bytes, 1, (size_t)len, f) != (size_t)len) {
            free(bytes);
            bytes = NULL;
        }
        *size = (size_t)len;
    }
    fclose(f);
    return bytes;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: arcella-bench-wasm3 FILE.wasm\n");
        return 2;
    }
    const char *file = argv[1];
    size_t size = 0;
    unsigned char *wasm = read_file(file, &size); /* the module points into it */
    if (!wasm) {
        perror(file);
        return 1;
    }
    IM3Environment env = m3_NewEnvironment();
    IM3Runtime runtime = env ? m3_NewRuntime(env, STACK_SIZE, NULL) : NULL;
    if (!runtime) return fail(file, "start", "out of memory");
    IM3Module module;
    M3Result result = m3_ParseModule(env, &module, wasm, (uint32_t)size);
    if (!result) result = m3_LoadModule(runtime, module);
    if (result) return fail(file, "load", result);
    static const struct { const char *name, *sig; M3RawCall call; } imports[] = {
        {"environ_sizes_get", "i(**)", environ_sizes_get},
        {"environ_get", "i(**)", environ_get},
        {"clock_time_get", "i(iI*)", clock_time_get},
        {"fd_write", "i(i*i*)", fd_write},
        {"proc_exit", "v(i)", proc_exit},
    };
    for (size_t i = 0; i < sizeof imports / sizeof imports[0]; i++) {
        result = m3_LinkRawFunction(module, WASI, imports[i].name, imports[i].sig, imports[i].call);
        if (result && result != m3Err_functionLookupFailed) return fail(file, imports[i].name, result);
    }
    IM3Function start;
    result = m3_FindFunction(&start, runtime, "_start");
    if (!result) result = m3_CallV(start);
    fflush(stdout);
    if (result == m3Err_trapExit) return exit_code;
    if (result) {
        M3ErrorInfo info;
        m3_GetErrorInfo(runtime, &info);
        fprintf(stderr, "arcella-bench-wasm3: %s: %s %s\n", file, result, info.message ? info.message : "");
        return 1;
    }
    return 0;
}
