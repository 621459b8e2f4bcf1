;; Provides acme:cycle/b@1.0.0 and imports acme:cycle/a@1.0.0: installed
;; beside cycle_a, the two form an import cycle the daemon must name.
(component
  (import "acme:cycle/a@1.0.0" (instance $other (export "ping" (func (result u32)))))
  (core module $m (func (export "ping") (result i32) i32.const 1))
  (core instance $i (instantiate $m))
  (func $ping (result u32) (canon lift (core func $i "ping")))
  (instance $out (export "ping" (func $ping)))
  (export "acme:cycle/b@1.0.0" (instance $out)))
