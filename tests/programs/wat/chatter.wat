;; A log flood for the fleet's rate limit (daemon::mqtt): 200 lines at
;; once, then a second's sleep, forever.
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff"
    (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; iovec at 0: { buf = 64, len = 6 }
  (data (i32.const 0) "\40\00\00\00\06\00\00\00")
  (data (i32.const 64) "chatt\n")
  ;; subscription at 128: clock 1 (monotonic), timeout at 152, relative.
  (data (i32.const 144) "\01\00\00\00")
  (func (export "_start")
    (local $i i32)
    (i64.store (i32.const 152) (i64.const 1000000000))
    (loop $forever
      (local.set $i (i32.const 200))
      (loop $burst
        (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
        (local.set $i (i32.sub (local.get $i) (i32.const 1)))
        (br_if $burst (local.get $i)))
      (drop (call $poll_oneoff (i32.const 128) (i32.const 192) (i32.const 1) (i32.const 232)))
      (br $forever)))
)
