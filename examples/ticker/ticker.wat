;; The sample service: a WASI preview-1 module whose `_start` never
;; returns. Every second it prints "tick" and sleeps (poll_oneoff on the
;; monotonic clock), so it costs nothing between ticks.
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff"
    (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; iovec at 0: { buf = 64, len = 5 }
  (data (i32.const 0) "\40\00\00\00\05\00\00\00")
  (data (i32.const 64) "tick\n")
  ;; subscription at 128 (48 bytes): userdata 0, tag 0 (clock),
  ;; clock id 1 (monotonic) at 144, timeout at 152, precision at 160,
  ;; flags 0 (relative) at 168.
  (data (i32.const 144) "\01\00\00\00")
  (func (export "_start")
    (i64.store (i32.const 152) (i64.const 1000000000))
    (loop $forever
      (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
      ;; one subscription in, one event out at 192, count at 232
      (drop (call $poll_oneoff (i32.const 128) (i32.const 192) (i32.const 1) (i32.const 232)))
      (br $forever)))
)
