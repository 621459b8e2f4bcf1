;; Grows two tables by 64K elements at a time, forever: host memory that
;; linear-memory limits do not see (100 tables of 1M elements took an
;; unbounded daemon to 842 MB). Stopped only by a limit on table elements.
(module
  (memory (export "memory") 1)
  (table $a 0 funcref)
  (table $b 0 funcref)
  (func (export "_start")
    (loop $grow
      (drop (table.grow $a (ref.null func) (i32.const 65536)))
      (drop (table.grow $b (ref.null func) (i32.const 65536)))
      (br $grow))))
