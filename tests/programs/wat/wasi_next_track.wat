;; A component that imports wasi:random/random@0.3.0 (the daemon provides
;; 0.2.12): what a toolchain older or newer than the daemon's produces.
;; Versions on the daemon's track (0.2.x, older or newer) are accepted;
;; another track (0.3.0) is refused with the version it provides named
;; (bad_input.rs).
(component
  (import "wasi:random/random@0.3.0" (instance $random
    (export "get-random-u64" (func (result u64)))))
  (core module $m
    (import "random" "get" (func $get (result i64)))
    (func (export "run") (result i32)
      (drop (call $get))
      (i32.const 0)))
  (core func $get (canon lower (func $random "get-random-u64")))
  (core instance $i (instantiate $m (with "random" (instance (export "get" (func $get))))))
  (func $run (result (result)) (canon lift (core func $i "run")))
  (instance $run_inst (export "run" (func $run)))
  (export "wasi:cli/run@0.2.0" (instance $run_inst))
)
