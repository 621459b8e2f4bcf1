;; A WASI command that traps at once with `unreachable`.
(module
  (memory (export "memory") 1)
  (func (export "_start") unreachable))
