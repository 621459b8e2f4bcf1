//! A test helper that makes a process run system calls it never meant to:
//! ptrace stops its main thread where it sits in a system call, points its
//! registers at that same `syscall` instruction with other arguments,
//! single-steps, reads the result and puts everything back. This is what
//! code that escaped wasmtime could do in a worker, without needing a bug
//! to do it (x86_64; the tests run as root, which may trace anything).

use nix::libc;
use nix::sys::ptrace;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use std::time::{Duration, Instant};

/// How an injected call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The kernel returned this (a negative errno on failure).
    Returned(i64),
    /// The process died of it (seccomp kills with SIGSYS), after this long.
    Killed(libc::c_int, Duration),
}

/// A process held under ptrace; released on drop.
pub struct Tracee {
    pid: Pid,
    alive: bool,
}

impl Tracee {
    /// Seizes `pid` and stops it inside a system call (its executor waits
    /// in `epoll_wait` or a futex almost all the time).
    pub fn seize(pid: u32) -> Self {
        let pid = Pid::from_raw(pid as i32);
        ptrace::seize(pid, ptrace::Options::empty()).expect("PTRACE_SEIZE: these tests run as root");
        let tracee = Self { pid, alive: true };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            ptrace::interrupt(pid).unwrap();
            tracee.wait_stop();
            if tracee.at_syscall().is_some() {
                return tracee;
            }
            assert!(Instant::now() < deadline, "pid {pid} never stopped in a system call");
            ptrace::cont(pid, None).unwrap();
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn wait_stop(&self) {
        match waitpid(self.pid, Some(WaitPidFlag::__WALL)).unwrap() {
            WaitStatus::PtraceEvent(..) | WaitStatus::Stopped(..) => {}
            other => panic!("pid {} did not stop: {other:?}", self.pid),
        }
    }

    /// The address of the `syscall` instruction (0f 05) the thread sits
    /// just after, if it stopped in a system call.
    fn at_syscall(&self) -> Option<u64> {
        let regs = ptrace::getregs(self.pid).unwrap();
        let before = regs.rip.checked_sub(2)?;
        let word = ptrace::read(self.pid, before as ptrace::AddressType).ok()?;
        (word & 0xffff == 0x050f).then_some(before)
    }

    /// Writes `text` NUL-terminated into the stack far below its pointer.
    pub fn put_str(&self, text: &str) -> u64 {
        let regs = ptrace::getregs(self.pid).unwrap();
        let at = (regs.rsp - 64 * 1024) & !7;
        let mut bytes = text.as_bytes().to_vec();
        bytes.push(0);
        for (i, chunk) in bytes.chunks(8).enumerate() {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            let addr = (at + 8 * i as u64) as ptrace::AddressType;
            ptrace::write(self.pid, addr, i64::from_ne_bytes(word) as libc::c_long).unwrap();
        }
        at
    }

    /// Runs system call `nr` with `args` in the tracee.
    pub fn syscall(&mut self, nr: libc::c_long, args: [u64; 6]) -> Outcome {
        let saved = ptrace::getregs(self.pid).unwrap();
        let instruction = self.at_syscall().expect("stopped in a system call");
        let mut regs = saved;
        regs.rip = instruction;
        regs.rax = nr as u64;
        // No restart of the interrupted call on this step.
        regs.orig_rax = u64::MAX;
        [regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8, regs.r9] = args;
        ptrace::setregs(self.pid, regs).unwrap();
        let asked = Instant::now();
        ptrace::step(self.pid, None).unwrap();
        match waitpid(self.pid, Some(WaitPidFlag::__WALL)).unwrap() {
            WaitStatus::Stopped(..) | WaitStatus::PtraceEvent(..) => {}
            WaitStatus::Signaled(_, signal, _) => {
                self.alive = false;
                return Outcome::Killed(signal as libc::c_int, asked.elapsed());
            }
            // The whole process went (SIGSYS to a thread group ends it).
            WaitStatus::Exited(..) => {
                self.alive = false;
                return Outcome::Killed(0, asked.elapsed());
            }
            other => panic!("unexpected stop after the step: {other:?}"),
        }
        let result = ptrace::getregs(self.pid).unwrap().rax as i64;
        ptrace::setregs(self.pid, saved).unwrap();
        Outcome::Returned(result)
    }

    /// `openat(AT_FDCWD, path, flags)`; a descriptor it got is closed again.
    pub fn open(&mut self, path: &str, flags: libc::c_int) -> Outcome {
        let at = self.put_str(path);
        let outcome = self.syscall(libc::SYS_openat, [libc::AT_FDCWD as u64, at, flags as u64, 0, 0, 0]);
        if let Outcome::Returned(fd) = outcome
            && fd >= 0
        {
            self.syscall(libc::SYS_close, [fd as u64, 0, 0, 0, 0, 0]);
        }
        outcome
    }
}

impl Drop for Tracee {
    fn drop(&mut self) {
        if self.alive {
            let _ = ptrace::detach(self.pid, None);
        }
    }
}
