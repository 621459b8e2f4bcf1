//! Each limit ends the guest with an error naming the limit and the module,
//! and an exit code of its own.

use crate::support::*;

#[test]
fn fuel_exhaustion_is_named() {
    for guest in ["cpu_loop_p1", "cpu_loop_p2"] {
        for target in TARGETS {
            run_guest(guest, &format!("{target}-fuel"), &["--fuel", "100000"])
                .expect_code(code::FUEL)
                .stderr_has(&[guest, "fuel exhausted", "100000"])
                .no_panic();
        }
    }
}

#[test]
fn enough_fuel_lets_the_guest_finish() {
    for target in TARGETS {
        run_guest(
            "cpu_loop_p1",
            &format!("{target}-fuel"),
            &["--fuel", "10000000000", "--", "1000"],
        )
        .expect_code(0)
        .stdout_has(&["primes below 1000: 168"]);
    }
}

#[test]
fn a_memory_bomb_hits_the_memory_limit() {
    for guest in ["memory_bomb_p1", "memory_bomb_p2"] {
        for target in TARGETS {
            run_guest(guest, target, &["--max-memory", "16M"])
                .expect_code(code::MEMORY)
                .stderr_has(&[guest, "memory limit of 16777216 bytes exceeded"])
                .no_panic();
        }
    }
}

#[test]
fn initial_memory_above_the_limit_is_refused() {
    for target in TARGETS {
        run_guest("big_memory", target, &["--max-memory", "1M"])
            .expect_code(code::MEMORY)
            .stderr_has(&["big_memory.", "memory limit of 1048576 bytes exceeded"]);
        run_guest("big_memory", target, &["--max-memory", "64M"]).expect_code(0);
    }
}

#[test]
fn deep_recursion_overflows_the_stack() {
    for guest in ["deep_recursion_p1", "deep_recursion_p2"] {
        for target in TARGETS {
            run_guest(guest, target, &[])
                .expect_code(code::STACK)
                .stderr_has(&[guest, "stack overflow"])
                .no_panic();
        }
    }
}

#[test]
fn an_infinite_loop_is_ended_by_the_timeout() {
    for target in TARGETS {
        run_guest("infinite_loop", target, &["--timeout", "300ms"])
            .expect_code(code::TIMEOUT)
            .stderr_has(&["infinite_loop.", "timeout", "300ms"])
            .no_panic();
    }
}

#[test]
fn a_guest_asleep_in_a_host_call_is_ended_by_the_timeout() {
    for guest in ["sleep_p1", "sleep_p2"] {
        for target in TARGETS {
            run_guest(guest, target, &["--timeout", "1s"])
                .expect_code(code::TIMEOUT)
                .stderr_has(&[guest, "timeout", "1s"])
                .stdout_has(&["sleeping"]);
        }
    }
}

#[test]
fn unreachable_is_reported_as_a_trap() {
    for target in TARGETS {
        run_guest("unreachable", target, &[])
            .expect_code(code::TRAP)
            .stderr_has(&["unreachable.", "wasm trap", "unreachable"])
            .no_panic();
    }
}
