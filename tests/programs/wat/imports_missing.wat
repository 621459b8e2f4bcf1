;; A component a daemon cannot link: it imports wasi:http (what
;; componentize-js adds by default) and an interface nobody provides,
;; beside one it does provide. Install must name both missing imports.
(component
  (import "wasi:http/types@0.2.3" (instance (export "fields" (type (sub resource)))))
  (import "acme:thermo/sensor@1.2.0" (instance (export "read" (func (result u32)))))
  (import "wasi:random/random@0.2.6" (instance (export "get-random-u64" (func (result u64)))))
  (core module $m (func (export "run") (result i32) i32.const 0))
  (core instance $i (instantiate $m))
  (func $run (result (result)) (canon lift (core func $i "run")))
  (instance $runner (export "run" (func $run)))
  (export "wasi:cli/run@0.2.0" (instance $runner)))
