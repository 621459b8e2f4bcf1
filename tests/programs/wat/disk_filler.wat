;; Writes 64 KiB blocks of zeros into `fill` in its granted directory
;; (preopen fd 3) until a write is refused, then exits 0: the file system
;; it was granted is full, and stays full.
(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (data (i32.const 16) "fill")
  (func (export "_start")
    ;; iovec at 32: 64 KiB from 65536.
    (i32.store (i32.const 32) (i32.const 65536))
    (i32.store (i32.const 36) (i32.const 65536))
    (if (call $path_open
          (i32.const 3) (i32.const 0) (i32.const 16) (i32.const 4)
          (i32.const 1) ;; O_CREAT
          (i64.const 0x1fffffff) (i64.const 0x1fffffff) (i32.const 0) (i32.const 8))
      (then (unreachable)))
    (loop $write
      (br_if $write
        (i32.eqz (call $fd_write (i32.load (i32.const 8)) (i32.const 32) (i32.const 1) (i32.const 40)))))))
