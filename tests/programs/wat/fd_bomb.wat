;; Opens the same file in its granted directory (preopen fd 3) again and
;; again without closing any: every open is a host descriptor, which for a
;; module in the daemon's process is the daemon's (one took the daemon to
;; its 1024-descriptor limit and locked the operator out). Exits with
;; 64 + the errno if an open is refused; a limit that traps ends it too.
(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "held")
  (func (export "_start")
    (local $errno i32)
    (loop $open
      (local.set $errno
        (call $path_open
          (i32.const 3) (i32.const 0) (i32.const 16) (i32.const 4)
          (i32.const 1) ;; O_CREAT
          (i64.const 0x1fffffff) (i64.const 0x1fffffff) (i32.const 0) (i32.const 0)))
      (br_if $open (i32.eqz (local.get $errno))))
    (call $proc_exit (i32.add (i32.const 64) (local.get $errno)))))
