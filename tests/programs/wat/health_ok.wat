;; A service with a health export answering 0 (healthy).
;; It prints "serving" once, then sleeps 10 ms at a time (poll_oneoff on
;; the monotonic clock), asking arcella.shutdown_requested between naps:
;; the host answers health questions from inside that call.
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff"
    (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
  (import "arcella" "shutdown_requested" (func $shutdown_requested (result i32)))
  (memory (export "memory") 1)
  ;; iovec at 0: { buf = 64, len = 8 }
  (data (i32.const 0) "\40\00\00\00\08\00\00\00")
  (data (i32.const 64) "serving\n")
  ;; subscription at 128: clock id 1 (monotonic) at 144, timeout at 152.
  (data (i32.const 144) "\01\00\00\00")
  (func (export "arcella_health") (result i32) (i32.const 0))
  (func (export "_start")
    (i64.store (i32.const 152) (i64.const 10000000))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (block $done
      (loop $serve
        (br_if $done (call $shutdown_requested))
        (drop (call $poll_oneoff (i32.const 128) (i32.const 192) (i32.const 1) (i32.const 232)))
        (br $serve))))
)
