;; Output that is not UTF-8 (issue 16, bad input): a line with invalid
;; bytes, then a line whose three-byte character "✓" (e2 9c 93) is split
;; across two writes, then exits 0. Run by bad_input.rs and daemon tests.
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; iovecs: at 0 { 100, 12 } "bad \ff\fe here\n"; at 8 { 200, 8 } "after \e2\9c";
  ;; at 16 { 300, 2 } "\93\n".
  (data (i32.const 0) "\64\00\00\00\0c\00\00\00")
  (data (i32.const 8) "\c8\00\00\00\08\00\00\00")
  (data (i32.const 16) "\2c\01\00\00\02\00\00\00")
  (data (i32.const 100) "bad \ff\fe here\n")
  (data (i32.const 200) "after \e2\9c")
  (data (i32.const 300) "\93\n")
  (func (export "_start")
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 400)))
    (drop (call $fd_write (i32.const 1) (i32.const 8) (i32.const 1) (i32.const 400)))
    (drop (call $fd_write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 400))))
)
