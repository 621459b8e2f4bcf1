;; Writes 64 KiB blocks into `fill` in its granted directory (preopen fd 3)
;; and, once the file system refuses, keeps the file open and spins: a
;; service that will not stop writing on its own. Only a quota ends it.
(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sched_yield" (func $sched_yield (result i32)))
  (memory (export "memory") 2)
  (data (i32.const 16) "fill")
  (func (export "_start")
    (i32.store (i32.const 32) (i32.const 65536))
    (i32.store (i32.const 36) (i32.const 65536))
    (if (call $path_open
          (i32.const 3) (i32.const 0) (i32.const 16) (i32.const 4)
          (i32.const 1) ;; O_CREAT
          (i64.const 0x1fffffff) (i64.const 0x1fffffff) (i32.const 0) (i32.const 8))
      (then (unreachable)))
    (loop $write
      (drop (call $fd_write (i32.load (i32.const 8)) (i32.const 32) (i32.const 1) (i32.const 40)))
      (drop (call $sched_yield))
      (br $write))))
