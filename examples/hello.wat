;; The sample guest: a WASI preview-1 command that prints a greeting.
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; iovec at 0: { buf = 16, len = 20 }
  (data (i32.const 0) "\10\00\00\00\14\00\00\00")
  (data (i32.const 16) "Hello from Arcella!\n")
  (func (export "_start")
    (drop (call $fd_write
      (i32.const 1)    ;; stdout
      (i32.const 0)    ;; iovecs
      (i32.const 1)    ;; one iovec
      (i32.const 8)))));; where to store the byte count
