//! The worker's seccomp-bpf system-call allowlist.
//!
//! [`install`] runs once, before any guest is loaded, and puts every thread of the worker (TSYNC)
//! under a filter that kills the whole process (`SECCOMP_RET_KILL_PROCESS`: the daemon sees the
//! worker die by SIGSYS) on any system call outside the list. The list is what the worker itself
//! needs: memory management for wasmtime (`PROT_EXEC` for Cranelift code, `memfd_create` for
//! copy-on-write memory images, `membarrier`/`riscv_flush_icache` for instruction caches), new
//! threads, futexes, signals to its own threads, clocks, the epoll/eventfd/timerfd reactors of
//! smol and tokio, file I/O for wasmtime-wasi (paths are confined by wasmtime-wasi and the jail,
//! not here), and send/receive on sockets it already holds (the daemon IPC on fd 3). It cannot
//! create sockets, exec, fork, signal other processes, change credentials, mount, trace, or load
//! code into the kernel. `clone` (threads only), `ioctl`, `fcntl`, `prctl`, `prlimit64`, `tgkill`
//! and `pidfd_open` are checked by argument; `clone3`, whose flags seccomp cannot see, gets
//! `ENOSYS` from a separate filter so that glibc falls back to `clone`.
//!
//! A worker whose modules have network rules (`Walls::network`) gets the socket calls too
//! ([`NETWORK`](imp) in the code: `socket`, `connect`, `bind`, `listen`, `accept4`, names,
//! options, `sendmmsg` for the resolver); `socket` is then allowed for `AF_INET`/`AF_INET6`
//! only, and any other family (a Unix socket to a daemon, netlink, raw packets) gets
//! `EAFNOSUPPORT` from a third filter, so the resolver's probe for nscd fails softly. Which
//! addresses a guest may reach is wasmtime-wasi's check, in `arcella_core::host::network`.

use std::sync::{Mutex, PoisonError};

/// What `install` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sandboxed {
    /// The allowlist is installed on every thread of the process.
    Filtered {
        /// How many system calls are allowed (the length of [`allowed_names`]).
        syscalls: usize,
    },
    /// seccompiler has no support for this CPU architecture (e.g. armv7); nothing installed.
    Unsupported {
        /// `std::env::consts::ARCH` of this build.
        arch: &'static str,
    },
}

/// Why the allowlist could not be installed. If the `clone3` filter went in but the allowlist
/// did not, the process is left half-sandboxed: it must exit rather than load guests.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// seccompiler rejected a rule or the filter built from the allowlist.
    #[error("building the seccomp filter failed: {0}")]
    Build(#[source] seccompiler::BackendError),
    /// The filter could not be compiled to BPF (e.g. it is too long).
    #[error("compiling the seccomp filter to BPF failed: {0}")]
    Compile(#[source] seccompiler::BackendError),
    /// The kernel refused a filter, or TSYNC could not apply it to every thread.
    #[error("installing the seccomp {filter} filter failed: {source}")]
    Install {
        /// Which of the two filters: `clone3` or `allowlist`.
        filter: &'static str,
        #[source]
        source: seccompiler::Error,
    },
}

/// Installs the worker's allowlist on all threads (seccompiler's TSYNC `apply_filter_all_threads`).
///
/// Call it before loading any guest. A second call does nothing and returns the same result (a
/// second installation would itself be killed by the first: `prctl(PR_SET_NO_NEW_PRIVS)` is not
/// allowed).
///
/// `network` adds the socket calls (for a worker whose modules have network rules).
pub fn install(network: bool) -> Result<Sandboxed, SeccompError> {
    static DONE: Mutex<Option<Sandboxed>> = Mutex::new(None);
    let mut done = DONE.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(sandboxed) = *done {
        return Ok(sandboxed);
    }
    let sandboxed = imp::install(network)?;
    match sandboxed {
        Sandboxed::Filtered { syscalls } => log::debug!("seccomp: {syscalls} system calls allowed, clone3 gets ENOSYS"),
        Sandboxed::Unsupported { arch } => log::warn!("seccomp: not supported on {arch}; the worker runs unfiltered"),
    }
    *done = Some(sandboxed);
    Ok(sandboxed)
}

/// The names of the allowed system calls (for docs/security.md and logs), without `clone3`,
/// which passes the allowlist but is answered with `ENOSYS`. Empty where [`install`] returns
/// [`Sandboxed::Unsupported`].
pub fn allowed_names() -> &'static [&'static str] {
    imp::allowed_names()
}

/// The system calls a worker with network rules gets on top of [`allowed_names`].
pub fn network_names() -> &'static [&'static str] {
    imp::network_names()
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64", target_arch = "riscv64")))]
mod imp {
    use super::{Sandboxed, SeccompError};

    pub(super) fn install(_network: bool) -> Result<Sandboxed, SeccompError> {
        Ok(Sandboxed::Unsupported {
            arch: std::env::consts::ARCH,
        })
    }

    pub(super) fn allowed_names() -> &'static [&'static str] {
        &[]
    }

    pub(super) fn network_names() -> &'static [&'static str] {
        &[]
    }
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64", target_arch = "riscv64"))]
mod imp {
    use super::{Sandboxed, SeccompError};
    use nix::libc;
    use seccompiler::{
        BackendError, BpfProgram, SeccompAction, SeccompCmpArgLen as Len, SeccompCmpOp as Op, SeccompCondition,
        SeccompFilter, SeccompRule, TargetArch,
    };
    use std::collections::BTreeMap;
    use std::sync::LazyLock;

    /// System call numbers: libc's, plus the ones libc does not define.
    mod nr {
        pub use nix::libc::*;
        /// `__NR_arch_specific_syscall + 15`; wasmtime's icache flush after publishing code.
        #[cfg(target_arch = "riscv64")]
        #[allow(non_upper_case_globals, reason = "spelled like libc's SYS_* constants")]
        pub const SYS_riscv_flush_icache: nix::libc::c_long = 259;
    }

    /// Which arguments an allowed system call may have.
    #[derive(Clone, Copy)]
    enum Args {
        Any,
        /// `clone`: a thread of this process (`CLONE_THREAD`), no new namespaces.
        NewThread,
        /// `prctl`: `PR_SET_NAME`/`PR_GET_NAME` only (std names its threads).
        ThreadName,
        /// `tgkill`, `pidfd_open`: only this process (glibc `raise`/`abort`; async-process's probe).
        OwnProcess,
        /// `ioctl`: only the requests in [`IOCTLS`].
        Ioctl,
        /// `fcntl`: only the commands in [`FCNTLS`].
        Fcntl,
        /// `prlimit64`: read this process's limits (glibc `getrlimit`), never set them.
        ReadLimits,
    }

    struct Allowed {
        name: &'static str,
        nr: i64,
        args: Args,
    }

    const fn strip_sys(name: &'static str) -> &'static str {
        name.split_at("SYS_".len()).1
    }

    macro_rules! allow {
        ($($(#[$cfg:meta])* $nr:ident $(if $args:ident)?;)*) => {
            &[$($(#[$cfg])* Allowed { name: strip_sys(stringify!($nr)), nr: nr::$nr, args: allow!(@ $($args)?) },)*]
        };
        (@) => { Args::Any };
        (@ $args:ident) => { Args::$args };
    }

    /// nonblocking (std, rustix, async-io), close-on-exec (std, wasmtime-wasi), isatty and
    /// terminal size (std `is_terminal`, wasi terminal queries).
    const IOCTLS: &[libc::Ioctl] = &[
        libc::FIONBIO,
        libc::FIOCLEX,
        libc::FIONCLEX,
        libc::TCGETS,
        libc::TIOCGWINSZ,
    ];

    /// Descriptor flags, status flags, duplication and memfd seals. Not `F_SETOWN`/`F_SETSIG`,
    /// which would aim signals at other processes, nor locks and leases.
    const FCNTLS: &[libc::c_int] = &[
        libc::F_DUPFD,
        libc::F_DUPFD_CLOEXEC,
        libc::F_GETFD,
        libc::F_SETFD,
        libc::F_GETFL,
        libc::F_SETFL,
        libc::F_ADD_SEALS,
        libc::F_GET_SEALS,
    ];

    /// `clone` flags that must be clear besides `CLONE_THREAD` being set.
    const NAMESPACES: libc::c_int = libc::CLONE_NEWNS
        | libc::CLONE_NEWCGROUP
        | libc::CLONE_NEWUTS
        | libc::CLONE_NEWIPC
        | libc::CLONE_NEWUSER
        | libc::CLONE_NEWPID
        | libc::CLONE_NEWNET;

    #[rustfmt::skip]
    static ALLOWED: &[Allowed] = allow! {
        // Memory: heap, linear memories, code (RW then RX), fiber and signal stacks, CoW images.
        SYS_mmap; SYS_munmap; SYS_mprotect; SYS_madvise; SYS_mremap; SYS_brk; SYS_memfd_create;
        SYS_membarrier;
        #[cfg(target_arch = "riscv64")] SYS_riscv_flush_icache;
        // Threads, futexes, signals within the process.
        SYS_clone if NewThread; SYS_set_robust_list; SYS_rseq; SYS_futex; SYS_sched_yield;
        SYS_sched_getaffinity; SYS_gettid; SYS_getpid; SYS_tgkill if OwnProcess; SYS_rt_sigaction;
        SYS_rt_sigprocmask; SYS_rt_sigreturn; SYS_sigaltstack; SYS_restart_syscall; SYS_prctl if ThreadName;
        SYS_exit; SYS_exit_group;
        // smol's global executor starts async-process's driver, which probes pidfd_open(getpid()).
        SYS_pidfd_open if OwnProcess;
        // Clocks and sleeping (the vDSO covers most clock reads).
        SYS_clock_gettime; SYS_clock_getres; SYS_clock_nanosleep; SYS_nanosleep; SYS_gettimeofday;
        // Reactors: smol/async-io (polling: epoll + eventfd + timerfd), tokio (mio), waits.
        SYS_epoll_create1; SYS_epoll_ctl; SYS_epoll_pwait; SYS_epoll_pwait2; SYS_eventfd2; SYS_timerfd_create;
        SYS_timerfd_settime; SYS_ppoll; SYS_pipe2;
        #[cfg(target_arch = "x86_64")] SYS_epoll_wait;
        #[cfg(target_arch = "x86_64")] SYS_poll;
        #[cfg(target_arch = "x86_64")] SYS_pipe;
        // I/O on descriptors the worker already holds (wasi appends with pwritev2(RWF_APPEND)).
        SYS_read; SYS_write; SYS_readv; SYS_writev; SYS_pread64; SYS_pwrite64; SYS_preadv; SYS_pwritev;
        SYS_preadv2; SYS_pwritev2; SYS_lseek; SYS_close; SYS_dup; SYS_dup3; SYS_fcntl if Fcntl; SYS_ioctl if Ioctl;
        SYS_fsync; SYS_fdatasync; SYS_ftruncate; SYS_fadvise64;
        #[cfg(target_arch = "x86_64")] SYS_dup2;
        // Files (wasmtime-wasi resolves guest paths beneath granted directory fds).
        SYS_openat; SYS_openat2; SYS_newfstatat; SYS_fstat; SYS_statx; SYS_statfs; SYS_fstatfs;
        SYS_getdents64; SYS_mkdirat; SYS_unlinkat; SYS_renameat2; SYS_linkat; SYS_symlinkat;
        SYS_readlinkat; SYS_utimensat; SYS_faccessat; SYS_faccessat2; SYS_getcwd;
        #[cfg(not(target_arch = "riscv64"))] SYS_renameat;
        // glibc's x86_64 path wrappers (std::fs) still use the legacy calls.
        #[cfg(target_arch = "x86_64")] SYS_access;
        #[cfg(target_arch = "x86_64")] SYS_readlink;
        #[cfg(target_arch = "x86_64")] SYS_mkdir;
        #[cfg(target_arch = "x86_64")] SYS_rmdir;
        #[cfg(target_arch = "x86_64")] SYS_unlink;
        #[cfg(target_arch = "x86_64")] SYS_rename;
        // Sockets the worker already holds (daemon IPC); never socket/connect/bind/accept.
        SYS_sendmsg; SYS_recvmsg; SYS_sendto; SYS_recvfrom; SYS_shutdown; SYS_getsockopt;
        // Read-only process facts.
        SYS_getrandom; SYS_prlimit64 if ReadLimits; SYS_getuid; SYS_geteuid; SYS_getgid; SYS_getegid;
        SYS_uname;
    };

    /// For a worker whose modules have network rules: internet sockets (the domain is checked by
    /// [`socket_family_filter`]), tokio's and the resolver's calls on them.
    #[rustfmt::skip]
    static NETWORK: &[Allowed] = allow! {
        SYS_socket; SYS_connect; SYS_bind; SYS_listen; SYS_accept4; SYS_getsockname; SYS_getpeername;
        SYS_setsockopt; SYS_sendmmsg; SYS_recvmmsg;
        #[cfg(target_arch = "x86_64")] SYS_accept;
    };

    static NAMES: LazyLock<Vec<&'static str>> = LazyLock::new(|| ALLOWED.iter().map(|a| a.name).collect());
    static NETWORK_NAMES: LazyLock<Vec<&'static str>> = LazyLock::new(|| NETWORK.iter().map(|a| a.name).collect());

    pub(super) fn allowed_names() -> &'static [&'static str] {
        &NAMES
    }

    pub(super) fn network_names() -> &'static [&'static str] {
        &NETWORK_NAMES
    }

    fn arg_is(arg: u8, value: u64) -> Result<SeccompRule, BackendError> {
        SeccompRule::new(vec![SeccompCondition::new(arg, Len::Dword, Op::Eq, value)?])
    }

    fn rules(args: Args, pid: u32) -> Result<Vec<SeccompRule>, BackendError> {
        let thread = libc::CLONE_THREAD as u64;
        match args {
            Args::Any => Ok(Vec::new()),
            Args::NewThread => Ok(vec![SeccompRule::new(vec![SeccompCondition::new(
                0,
                Len::Dword,
                Op::MaskedEq(thread | NAMESPACES as u64),
                thread,
            )?])?]),
            Args::ThreadName => [libc::PR_SET_NAME, libc::PR_GET_NAME]
                .map(|op| arg_is(0, op as u64))
                .into_iter()
                .collect(),
            Args::OwnProcess => Ok(vec![arg_is(0, u64::from(pid))?]),
            #[allow(clippy::unnecessary_cast, reason = "`Ioctl` is c_ulong on glibc but c_int on musl")]
            Args::Ioctl => IOCTLS.iter().map(|&request| arg_is(1, request as u64)).collect(),
            Args::Fcntl => FCNTLS.iter().map(|&cmd| arg_is(1, cmd as u64)).collect(),
            Args::ReadLimits => Ok(vec![SeccompRule::new(vec![
                SeccompCondition::new(0, Len::Dword, Op::Eq, 0)?,
                SeccompCondition::new(2, Len::Qword, Op::Eq, 0)?,
            ])?]),
        }
    }

    /// Filter A: everything passes except `clone3`, which gets `ENOSYS`.
    fn clone3_filter(arch: TargetArch) -> Result<SeccompFilter, BackendError> {
        let rules = BTreeMap::from([(libc::SYS_clone3, Vec::new())]);
        SeccompFilter::new(
            rules,
            SeccompAction::Allow,
            SeccompAction::Errno(libc::ENOSYS as u32),
            arch,
        )
    }

    /// Filter B: the allowlist; anything else kills the process. `clone3` passes here so that
    /// filter A's `ENOSYS` (which outranks allow) decides it.
    fn allowlist_filter(arch: TargetArch, network: bool) -> Result<SeccompFilter, BackendError> {
        let pid = std::process::id();
        let mut map = BTreeMap::from([(libc::SYS_clone3, Vec::new())]);
        let extra: &[Allowed] = if network { NETWORK } else { &[] };
        for allowed in ALLOWED.iter().chain(extra) {
            map.insert(allowed.nr, rules(allowed.args, pid)?);
        }
        SeccompFilter::new(map, SeccompAction::KillProcess, SeccompAction::Allow, arch)
    }

    /// Filter C (network workers only): `socket` of any family but `AF_INET`/`AF_INET6` gets
    /// `EAFNOSUPPORT`; everything else passes (filter B decides it).
    fn socket_family_filter(arch: TargetArch) -> Result<SeccompFilter, BackendError> {
        let other_family = SeccompRule::new(vec![
            SeccompCondition::new(0, Len::Dword, Op::Ne, libc::AF_INET as u64)?,
            SeccompCondition::new(0, Len::Dword, Op::Ne, libc::AF_INET6 as u64)?,
        ])?;
        let rules = BTreeMap::from([(libc::SYS_socket, vec![other_family])]);
        SeccompFilter::new(
            rules,
            SeccompAction::Allow,
            SeccompAction::Errno(libc::EAFNOSUPPORT as u32),
            arch,
        )
    }

    fn compile(filter: SeccompFilter) -> Result<BpfProgram, SeccompError> {
        BpfProgram::try_from(filter).map_err(SeccompError::Compile)
    }

    pub(super) fn install(network: bool) -> Result<Sandboxed, SeccompError> {
        let arch = TargetArch::try_from(std::env::consts::ARCH).map_err(SeccompError::Build)?;
        let clone3 = compile(clone3_filter(arch).map_err(SeccompError::Build)?)?;
        let allowlist = compile(allowlist_filter(arch, network).map_err(SeccompError::Build)?)?;
        let families = match network {
            true => Some(compile(socket_family_filter(arch).map_err(SeccompError::Build)?)?),
            false => None,
        };
        // Order matters: installing needs prctl(PR_SET_NO_NEW_PRIVS) and seccomp(2), which only
        // the clone3 filter lets through.
        seccompiler::apply_filter_all_threads(&clone3).map_err(|source| SeccompError::Install {
            filter: "clone3",
            source,
        })?;
        if let Some(families) = &families {
            seccompiler::apply_filter_all_threads(families).map_err(|source| SeccompError::Install {
                filter: "socket family",
                source,
            })?;
        }
        seccompiler::apply_filter_all_threads(&allowlist).map_err(|source| SeccompError::Install {
            filter: "allowlist",
            source,
        })?;
        let extra = if network { NETWORK.len() } else { 0 };
        Ok(Sandboxed::Filtered {
            syscalls: ALLOWED.len() + extra,
        })
    }
}

#[cfg(test)]
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64", target_arch = "riscv64")))]
mod tests {
    #[test]
    fn unsupported_architectures_install_nothing() {
        let arch = std::env::consts::ARCH;
        assert!(matches!(super::install(), Ok(super::Sandboxed::Unsupported { arch: a }) if a == arch));
        assert!(super::allowed_names().is_empty());
    }
}

#[cfg(test)]
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64", target_arch = "riscv64"))]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    //! Installing the filter in the test process would break the harness, so every case re-runs
    //! this test binary filtered to itself, with `ARCELLA_SECCOMP_CHILD` naming the case; that child
    //! does the work and the parent judges its exit status.

    use super::{Sandboxed, allowed_names, install, network_names};
    use nix::libc;
    use std::io::{Read, Write};
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
    use std::os::unix::process::ExitStatusExt;
    use std::process::{Command, Output, Stdio};
    use std::ptr;
    use std::time::Duration;

    const CHILD: &str = "ARCELLA_SECCOMP_CHILD";

    /// Runs `case` in a child copy of this binary and returns the child's output. In the child,
    /// `case` runs and the process exits 0 if it returns.
    fn in_child(name: &str, case: fn(&str)) -> Output {
        if std::env::var_os(CHILD).is_some_and(|value| value == name) {
            case(name);
            eprintln!("{name}: done");
            std::process::exit(0);
        }
        // `module_path!()` starts with the crate name, which libtest leaves out of test names.
        let module = module_path!().split_once("::").map_or(module_path!(), |(_, path)| path);
        Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                &format!("{module}::{name}"),
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD, name)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn describe(out: &Output) -> String {
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        format!("{:?}\n--- stdout\n{stdout}\n--- stderr\n{stderr}", out.status)
    }

    fn assert_survived(name: &str, out: &Output) {
        let done = String::from_utf8_lossy(&out.stderr).contains(&format!("{name}: done"));
        assert!(
            out.status.success() && done,
            "child should have finished: {}",
            describe(out)
        );
    }

    fn assert_killed(name: &str, out: &Output) {
        let sandboxed = String::from_utf8_lossy(&out.stderr).contains(&format!("{name}: sandboxed"));
        let sigsys = out.status.signal() == Some(libc::SIGSYS);
        assert!(
            sandboxed && sigsys,
            "child should have died by SIGSYS: {}",
            describe(out)
        );
    }

    /// In the child: checks the kernel has seccomp, turns off core dumps, installs the filter.
    fn sandbox(name: &str) {
        sandbox_with(name, false);
    }

    /// [`sandbox`], with the network calls when `network`.
    fn sandbox_with(name: &str, network: bool) {
        // SAFETY: PR_GET_SECCOMP takes no further arguments and touches no memory.
        let mode = unsafe { libc::prctl(libc::PR_GET_SECCOMP) };
        assert!(
            mode >= 0,
            "this kernel has no seccomp: {}",
            std::io::Error::last_os_error()
        );
        let no_core = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `no_core` is a valid rlimit that outlives the call.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_CORE, &no_core) }, 0);
        let extra = if network { network_names().len() } else { 0 };
        let sandboxed = install(network).unwrap();
        assert_eq!(
            sandboxed,
            Sandboxed::Filtered {
                syscalls: allowed_names().len() + extra
            }
        );
        assert_eq!(install(network).unwrap(), sandboxed, "a second install is a no-op");
        eprintln!("{name}: sandboxed");
    }

    fn check(ret: libc::c_long, what: &str) -> libc::c_long {
        assert!(ret >= 0, "{what}: {}", std::io::Error::last_os_error());
        ret
    }

    /// An owned descriptor from a raw one a successful call just returned.
    fn owned(fd: RawFd) -> OwnedFd {
        check(fd.into(), "fd");
        // SAFETY: `fd` was just returned by the kernel and nothing else owns it.
        unsafe { OwnedFd::from_raw_fd(fd) }
    }

    fn threads_files_and_time(name: &str) {
        let mut pair = [0; 2];
        // SAFETY: `pair` has room for the two descriptors. socketpair is forbidden once sandboxed.
        check(
            unsafe {
                libc::socketpair(
                    libc::AF_UNIX,
                    libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
                    0,
                    pair.as_mut_ptr(),
                )
            }
            .into(),
            "socketpair",
        );
        let (ipc_a, ipc_b) = (owned(pair[0]), owned(pair[1]));
        sandbox(name);

        // Threads (clone3 gets ENOSYS, glibc retries with clone), with names, and a timed wait.
        let worker = std::thread::Builder::new()
            .name("seccomp-test".into())
            .spawn(|| 6 * 7)
            .unwrap();
        assert_eq!(worker.join().unwrap(), 42);
        let (_tx, rx) = std::sync::mpsc::channel::<()>();
        assert!(rx.recv_timeout(Duration::from_millis(1)).is_err());
        std::thread::sleep(Duration::from_millis(1));

        // Files: create, write, append, rename, read, stat, list, remove.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!("arcella-seccomp-{}-{nanos}", std::process::id()));
        std::fs::create_dir(&dir).unwrap();
        let (a, b) = (dir.join("a"), dir.join("b"));
        std::fs::write(&a, b"hello").unwrap();
        let mut file = std::fs::OpenOptions::new().append(true).open(&a).unwrap();
        file.write_all(b" world").unwrap();
        file.sync_all().unwrap();
        drop(file);
        std::fs::rename(&a, &b).unwrap();
        assert_eq!(std::fs::read(&b).unwrap(), b"hello world");
        assert_eq!(std::fs::metadata(&b).unwrap().len(), 11);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        std::fs::remove_file(&b).unwrap();
        std::fs::remove_dir(&dir).unwrap();

        // epoll + eventfd, as the reactors use them.
        // SAFETY: plain descriptor-creating calls without pointers.
        let (epoll, event) = unsafe {
            (
                libc::epoll_create1(libc::EPOLL_CLOEXEC),
                libc::eventfd(0, libc::EFD_CLOEXEC),
            )
        };
        let (epoll, event) = (owned(epoll), owned(event));
        let mut interest = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: 7,
        };
        // SAFETY: both fds are open and `interest` is a valid epoll_event.
        check(
            unsafe { libc::epoll_ctl(epoll.as_raw_fd(), libc::EPOLL_CTL_ADD, event.as_raw_fd(), &mut interest) }.into(),
            "epoll_ctl",
        );
        std::fs::File::from(event.try_clone().unwrap())
            .write_all(&1u64.to_ne_bytes())
            .unwrap();
        let mut ready = [libc::epoll_event { events: 0, u64: 0 }; 2];
        // SAFETY: `ready` has room for the 2 events passed as its length.
        let n = unsafe { libc::epoll_wait(epoll.as_raw_fd(), ready.as_mut_ptr(), 2, 1000) };
        assert_eq!((n, { ready[0].u64 }), (1, 7));

        // Random bytes.
        let mut random = [0u8; 16];
        // SAFETY: `random` is writable for its full length.
        let got = unsafe { libc::getrandom(random.as_mut_ptr().cast(), random.len(), 0) };
        assert_eq!(got, 16);

        // A page written and then made executable, as wasmtime does with compiled code.
        // SAFETY: a fresh anonymous private mapping; no existing memory is touched.
        let page = unsafe {
            libc::mmap(
                ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(page, libc::MAP_FAILED);
        // SAFETY: `page` is a 4096-byte RW mapping owned by this function.
        unsafe {
            page.cast::<u8>().write_bytes(0xc3, 4096);
            assert_eq!(libc::mprotect(page, 4096, libc::PROT_READ | libc::PROT_EXEC), 0);
            assert_eq!(libc::munmap(page, 4096), 0);
        }

        // A memfd with seals, as wasmtime's copy-on-write memory images.
        // SAFETY: the name is a valid C string.
        let memfd =
            owned(unsafe { libc::memfd_create(c"image".as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) });
        std::fs::File::from(memfd.try_clone().unwrap())
            .write_all(b"data")
            .unwrap();
        // SAFETY: `memfd` is open; F_ADD_SEALS takes an int.
        check(
            unsafe {
                libc::fcntl(
                    memfd.as_raw_fd(),
                    libc::F_ADD_SEALS,
                    libc::F_SEAL_GROW | libc::F_SEAL_WRITE,
                )
            }
            .into(),
            "seals",
        );

        // Signals to this thread (raise is tgkill on glibc), limits read, ioctl FIONBIO.
        // SAFETY: ignoring SIGUSR1 then raising it has no effect beyond the syscalls themselves.
        unsafe {
            assert_ne!(libc::signal(libc::SIGUSR1, libc::SIG_IGN), libc::SIG_ERR);
            assert_eq!(libc::raise(libc::SIGUSR1), 0);
        }
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `limit` is writable.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) }, 0);
        let on: libc::c_int = 1;
        // SAFETY: FIONBIO reads one int from `on`.
        check(
            unsafe { libc::ioctl(ipc_a.as_raw_fd(), libc::FIONBIO, &on) }.into(),
            "FIONBIO",
        );

        // The daemon IPC: sendmsg/recvmsg on a SOCK_SEQPACKET pair made before the filter.
        let mut out = *b"ping";
        let mut iov = libc::iovec {
            iov_base: out.as_mut_ptr().cast(),
            iov_len: out.len(),
        };
        // SAFETY: an all-zero msghdr is valid; the iovec then points at live buffers.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        // SAFETY: `msg` describes `out`, which is live for the call.
        assert_eq!(unsafe { libc::sendmsg(ipc_a.as_raw_fd(), &msg, 0) }, 4);
        let mut back = [0u8; 8];
        iov = libc::iovec {
            iov_base: back.as_mut_ptr().cast(),
            iov_len: back.len(),
        };
        msg.msg_iov = &mut iov;
        // SAFETY: `msg` describes `back`, which is live and writable for the call.
        let received = unsafe { libc::recvmsg(ipc_b.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
        assert_eq!(received, 4);
        assert_eq!(&back[..4], b"ping");
    }

    #[test]
    fn allowed_work_survives() {
        let out = in_child("allowed_work_survives", threads_files_and_time);
        assert_survived("allowed_work_survives", &out);
    }

    fn smol_reactor(name: &str) {
        let (left, right) = std::os::unix::net::UnixStream::pair().unwrap();
        sandbox(name);
        smol::block_on(async {
            smol::Timer::after(Duration::from_millis(5)).await;
            assert_eq!(smol::unblock(|| 6 * 7).await, 42);
            let task = smol::spawn(async {
                smol::Timer::after(Duration::from_millis(1)).await;
                5
            });
            assert_eq!(task.await, 5);
            let (mut left, mut right) = (smol::Async::new(left).unwrap(), smol::Async::new(right).unwrap());
            let reader = smol::spawn(async move {
                let mut buf = [0u8; 4];
                smol::io::AsyncReadExt::read_exact(&mut right, &mut buf).await.unwrap();
                buf
            });
            smol::Timer::after(Duration::from_millis(2)).await;
            smol::io::AsyncWriteExt::write_all(&mut left, b"pong").await.unwrap();
            assert_eq!(&reader.await, b"pong");
        });
        // The blocking pool and the reactor thread keep running; a plain read still works.
        let mut buf = Vec::new();
        std::io::empty().read_to_end(&mut buf).unwrap();
    }

    #[test]
    fn smol_reactor_survives() {
        let out = in_child("smol_reactor_survives", smol_reactor);
        assert_survived("smol_reactor_survives", &out);
    }

    fn clone3(name: &str) {
        sandbox(name);
        // SAFETY: a null clone_args with size 0; the filter answers before the kernel reads it.
        let ret = unsafe { libc::syscall(libc::SYS_clone3, ptr::null_mut::<libc::c_void>(), 0usize) };
        let errno = std::io::Error::last_os_error().raw_os_error();
        assert_eq!((ret, errno), (-1, Some(libc::ENOSYS)));
    }

    #[test]
    fn clone3_gets_enosys() {
        let out = in_child("clone3_gets_enosys", clone3);
        assert_survived("clone3_gets_enosys", &out);
    }

    fn older_thread(name: &str) {
        let (go, wait) = std::sync::mpsc::channel::<()>();
        let older = std::thread::spawn(move || {
            wait.recv().unwrap();
            // SAFETY: creates a descriptor or fails; no memory involved.
            unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_DGRAM, 0) }
        });
        sandbox(name);
        go.send(()).unwrap();
        eprintln!("socket on the older thread returned {}", older.join().unwrap());
    }

    #[test]
    fn thread_started_before_install_is_filtered_too() {
        let out = in_child("thread_started_before_install_is_filtered_too", older_thread);
        assert_killed("thread_started_before_install_is_filtered_too", &out);
    }

    fn socket(name: &str) {
        sandbox(name);
        // SAFETY: creates a descriptor or fails; no memory involved.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) };
        eprintln!("socket returned {fd}");
    }

    #[test]
    fn socket_is_killed() {
        let out = in_child("socket_is_killed", socket);
        assert_killed("socket_is_killed", &out);
    }

    fn execve(name: &str) {
        sandbox(name);
        let argv = [c"/bin/true".as_ptr(), ptr::null()];
        let envp = [ptr::null()];
        // SAFETY: NUL-terminated path, argv and envp arrays that outlive the call.
        let ret = unsafe { libc::execve(argv[0], argv.as_ptr(), envp.as_ptr()) };
        eprintln!("execve returned {ret}");
    }

    #[test]
    fn execve_is_killed() {
        let out = in_child("execve_is_killed", execve);
        assert_killed("execve_is_killed", &out);
    }

    fn fork(name: &str) {
        sandbox(name);
        // SAFETY: if the fork happens after all, the new process only calls `_exit`.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: `_exit` is async-signal-safe and ends the forked child at once.
            unsafe { libc::_exit(0) };
        }
        eprintln!("fork returned {pid}");
    }

    #[test]
    fn fork_is_killed() {
        let out = in_child("fork_is_killed", fork);
        assert_killed("fork_is_killed", &out);
    }

    fn kill(name: &str) {
        sandbox(name);
        // SAFETY: signal 0 only checks that pid 1 exists.
        let ret = unsafe { libc::kill(1, 0) };
        eprintln!("kill returned {ret}");
    }

    #[test]
    fn kill_is_killed() {
        let out = in_child("kill_is_killed", kill);
        assert_killed("kill_is_killed", &out);
    }

    fn tgkill_other(name: &str) {
        sandbox(name);
        // SAFETY: signal 0 to pid 1's main thread only checks that it exists.
        let ret = unsafe { libc::syscall(libc::SYS_tgkill, 1, 1, 0) };
        eprintln!("tgkill returned {ret}");
    }

    #[test]
    fn tgkill_to_another_process_is_killed() {
        let out = in_child("tgkill_to_another_process_is_killed", tgkill_other);
        assert_killed("tgkill_to_another_process_is_killed", &out);
    }

    fn ioctl_tiocsti(name: &str) {
        let mut pipe = [0; 2];
        // SAFETY: `pipe` has room for two descriptors.
        check(
            unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) }.into(),
            "pipe2",
        );
        sandbox(name);
        let byte = b'x';
        // SAFETY: TIOCSTI reads one byte; on a pipe it would fail with ENOTTY anyway.
        let ret = unsafe { libc::ioctl(pipe[0], libc::TIOCSTI, &byte) };
        eprintln!("ioctl returned {ret}");
    }

    #[test]
    fn other_ioctl_is_killed() {
        let out = in_child("other_ioctl_is_killed", ioctl_tiocsti);
        assert_killed("other_ioctl_is_killed", &out);
    }

    fn prctl_dumpable(name: &str) {
        sandbox(name);
        // SAFETY: PR_GET_DUMPABLE takes no further arguments.
        let ret = unsafe { libc::prctl(libc::PR_GET_DUMPABLE) };
        eprintln!("prctl returned {ret}");
    }

    #[test]
    fn other_prctl_is_killed() {
        let out = in_child("other_prctl_is_killed", prctl_dumpable);
        assert_killed("other_prctl_is_killed", &out);
    }

    /// A network worker: TCP over loopback works end to end (listen, accept, connect, options,
    /// names), and a Unix socket is refused with EAFNOSUPPORT instead of killing the worker.
    fn network_calls(name: &str) {
        sandbox_with(name, true);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let client = std::thread::spawn(move || {
            let mut stream = std::net::TcpStream::connect(addr).unwrap();
            stream.set_nodelay(true).unwrap();
            stream.write_all(b"ping").unwrap();
            stream.shutdown(std::net::Shutdown::Write).unwrap();
            stream.peer_addr().unwrap()
        });
        let (mut accepted, _) = listener.accept().unwrap();
        let mut got = Vec::new();
        accepted.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"ping");
        assert_eq!(client.join().unwrap(), addr);
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        udp.send_to(b"d", udp.local_addr().unwrap()).unwrap();
        let mut buf = [0u8; 4];
        assert_eq!(udp.recv_from(&mut buf).unwrap().0, 1);
        // SAFETY: creates a descriptor or fails; no memory involved.
        let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0) };
        let errno = std::io::Error::last_os_error().raw_os_error();
        assert_eq!((fd, errno), (-1, Some(libc::EAFNOSUPPORT)));
        // SAFETY: as above.
        let fd = unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_RAW, 0) };
        assert_eq!(fd, -1, "netlink refused too");
    }

    #[test]
    fn a_network_worker_uses_internet_sockets_only() {
        let out = in_child("a_network_worker_uses_internet_sockets_only", network_calls);
        assert_survived("a_network_worker_uses_internet_sockets_only", &out);
    }

    fn exec_in_network_worker(name: &str) {
        sandbox_with(name, true);
        let argv = [c"/bin/true".as_ptr(), ptr::null()];
        let envp = [ptr::null()];
        // SAFETY: NUL-terminated path, argv and envp arrays that outlive the call.
        let ret = unsafe { libc::execve(argv[0], argv.as_ptr(), envp.as_ptr()) };
        eprintln!("execve returned {ret}");
    }

    #[test]
    fn a_network_worker_is_still_killed_on_execve() {
        let out = in_child("a_network_worker_is_still_killed_on_execve", exec_in_network_worker);
        assert_killed("a_network_worker_is_still_killed_on_execve", &out);
    }

    #[test]
    fn names_are_unique_and_exclude_forbidden_calls() {
        let names = allowed_names();
        let mut sorted = names.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len(), "duplicate entries");
        for extra in network_names() {
            assert!(!names.contains(extra), "{extra} is in both lists");
        }
        for forbidden in ["execve", "fork", "kill", "ptrace", "socketpair", "unshare"] {
            assert!(
                !network_names().contains(&forbidden),
                "{forbidden} must not come with the network"
            );
        }
        for forbidden in [
            "socket", "connect", "bind", "execve", "execveat", "fork", "vfork", "kill", "ptrace", "clone3",
        ] {
            assert!(!names.contains(&forbidden), "{forbidden} must not be allowed");
        }
    }
}
