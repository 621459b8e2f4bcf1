//! Starting a worker process in a jail, and watching it.
//!
//! The jail is modelled on firecracker's jailer. Between fork and exec the
//! child runs only async-signal-safe system calls (no allocation, no
//! locks): the daemon is threaded, so nothing else is safe there. What
//! needs allocating (paths, the cgroup file name) is prepared before the
//! fork. What the worker can do for itself after exec (closing stray
//! descriptors, seccomp) it does itself, before it loads any guest.

use nix::sys::resource::{Resource, setrlimit};
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// The descriptor a worker finds its IPC socket on.
pub const IPC_FD: RawFd = 3;

/// How a worker process is confined.
#[derive(Debug, Clone, Default)]
pub struct Jail {
    /// Run as this uid/gid (the daemon must be root to switch).
    pub user: Option<(u32, u32)>,
    /// RLIMIT_DATA: the group's memory budget.
    pub data_limit: Option<u64>,
    /// RLIMIT_NOFILE.
    pub open_files: u64,
    /// `cgroup.procs` of the worker's own cgroup, joined before exec.
    pub cgroup_procs: Option<std::path::PathBuf>,
}

/// Starts `program` jailed, with `ipc` as its fd 3, an empty environment,
/// stdin and stdout on /dev/null, stderr piped back to the caller, `/` as
/// its working directory, in a session of its own, and killed by SIGKILL
/// if the daemon dies.
pub fn spawn_jailed(program: &Path, args: &[&str], ipc: OwnedFd, jail: &Jail) -> io::Result<Child> {
    let cgroup = match &jail.cgroup_procs {
        Some(path) => Some(
            CString::new(path.as_os_str().as_encoded_bytes())
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a cgroup path with a NUL byte"))?,
        ),
        None => None,
    };
    let parent = nix::unistd::getpid();
    let ipc_raw = ipc.as_raw_fd();
    // rlim_t is 32 bits on armv7: a limit beyond it means "as much as fits".
    let rlim = |v: u64| nix::libc::rlim_t::try_from(v).unwrap_or(nix::libc::rlim_t::MAX);
    let data_limit = jail.data_limit.map(rlim);
    let open_files = rlim(jail.open_files);
    let mut command = Command::new(program);
    command
        .args(args)
        .env_clear()
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some((uid, gid)) = jail.user {
        // std drops supplementary groups (setgroups(0)) when root sets a uid.
        command.uid(uid).gid(gid);
    }
    // SAFETY: the closure runs in the forked child before exec. It calls
    // only async-signal-safe system calls (setsid, prctl, setrlimit, open,
    // write, close, dup2, fcntl, getppid) on data prepared before the
    // fork, and allocates nothing.
    unsafe {
        command.pre_exec(move || {
            nix::unistd::setsid().map_err(io::Error::from)?;
            // After the uid change (std does it before this closure), which
            // would otherwise clear the parent-death signal.
            nix::sys::prctl::set_pdeathsig(Some(Signal::SIGKILL)).map_err(io::Error::from)?;
            if nix::unistd::getppid() != parent {
                // The daemon died between fork and prctl.
                return Err(io::Error::other("the daemon is gone"));
            }
            nix::sys::prctl::set_no_new_privs().map_err(io::Error::from)?;
            setrlimit(Resource::RLIMIT_CORE, 0, 0).map_err(io::Error::from)?;
            setrlimit(Resource::RLIMIT_NOFILE, open_files, open_files).map_err(io::Error::from)?;
            if let Some(limit) = data_limit {
                setrlimit(Resource::RLIMIT_DATA, limit, limit).map_err(io::Error::from)?;
            }
            if let Some(procs) = &cgroup {
                join_cgroup(procs)?;
            }
            // dup2 onto fd 3 clears close-on-exec on the copy; if the socket
            // already is fd 3, clear the flag instead.
            if ipc_raw == IPC_FD {
                clear_cloexec(ipc_raw)?;
            } else if nix::libc::dup2(ipc_raw, IPC_FD) < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = command.spawn();
    drop(ipc);
    child
}

/// Writes "0" (this process) into a cgroup's `cgroup.procs`.
fn join_cgroup(procs: &CString) -> io::Result<()> {
    // SAFETY: `procs` is a valid NUL-terminated path; open/write/close are
    // async-signal-safe and the descriptor is closed on every path.
    unsafe {
        let fd = nix::libc::open(procs.as_ptr(), nix::libc::O_WRONLY | nix::libc::O_CLOEXEC);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let written = nix::libc::write(fd, c"0".as_ptr().cast(), 1);
        nix::libc::close(fd);
        if written != 1 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

fn clear_cloexec(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor this process owns; async-signal-safe.
    let result = unsafe { nix::libc::fcntl(fd, nix::libc::F_SETFD, 0) };
    if result < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Makes this process non-dumpable (`PR_SET_DUMPABLE 0`): no core dumps,
/// its `/proc/PID` files owned by root, and no `ptrace` attach or
/// `/proc/PID/mem` access by other processes of the same uid, only by
/// privileged ones. The daemon calls it first thing, and a worker first
/// thing after exec (exec resets the attribute), so a worker that escaped
/// wasmtime cannot read or write the daemon's or another worker's memory.
pub fn make_undumpable() -> io::Result<()> {
    nix::sys::prctl::set_dumpable(false).map_err(io::Error::from)
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Exited(i32),
    Signaled(i32),
}

impl std::fmt::Display for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Self::Exited(code) => write!(f, "exited with code {code}"),
            Self::Signaled(signal) if signal == Signal::SIGSYS as i32 => write!(
                f,
                "was killed by its seccomp filter (SIGSYS): it made a forbidden system call"
            ),
            Self::Signaled(signal) => match Signal::try_from(signal) {
                Ok(name) => write!(f, "was killed by signal {}", name.as_str()),
                Err(_) => write!(f, "was killed by signal {signal}"),
            },
        }
    }
}

/// Reaps `pid` if it has ended; `None` while it runs.
pub fn try_reap(pid: u32) -> io::Result<Option<Ended>> {
    match waitpid(Pid::from_raw(pid as i32), Some(WaitPidFlag::WNOHANG)).map_err(io::Error::from)? {
        WaitStatus::Exited(_, code) => Ok(Some(Ended::Exited(code))),
        WaitStatus::Signaled(_, signal, _) => Ok(Some(Ended::Signaled(signal as i32))),
        _ => Ok(None),
    }
}

/// Sends SIGTERM (`hard`: SIGKILL) to a process; one already gone is fine.
pub fn signal(pid: u32, hard: bool) {
    let signal = if hard { Signal::SIGKILL } else { Signal::SIGTERM };
    let _ = kill(Pid::from_raw(pid as i32), signal);
}

/// Resident memory of a process, from `/proc/PID/statm`.
pub fn resident_bytes(pid: u32) -> Option<u64> {
    statm_resident(&std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?)
}

/// The resident bytes a `/proc/PID/statm` text gives (its second field, in pages).
fn statm_resident(statm: &str) -> Option<u64> {
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * page_size())
}

/// This process's resident memory through `/proc/self/statm` opened once,
/// so it can still be read inside walls that forbid opening `/proc`.
#[derive(Debug)]
pub struct OwnResidentMemory(std::fs::File);

impl OwnResidentMemory {
    pub fn open() -> io::Result<Self> {
        std::fs::File::open("/proc/self/statm").map(Self)
    }

    /// Resident bytes now (procfs regenerates the text at offset 0).
    pub fn bytes(&self) -> Option<u64> {
        use std::os::unix::fs::FileExt;
        let mut buf = [0u8; 128];
        let n = self.0.read_at(&mut buf, 0).ok()?;
        statm_resident(std::str::from_utf8(&buf[..n]).ok()?)
    }
}

/// MemAvailable from `/proc/meminfo`, in bytes.
pub fn available_memory() -> Option<u64> {
    meminfo_bytes("MemAvailable:")
}

/// MemTotal from `/proc/meminfo`, in bytes.
pub fn total_memory() -> Option<u64> {
    meminfo_bytes("MemTotal:")
}

/// One `/proc/meminfo` field (given with its colon), in bytes.
fn meminfo_bytes(field: &str) -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix(field))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kib * 1024)
}

fn page_size() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .map_or(4096, |p| p as u64)
}

/// Closes every descriptor above `keep` (the worker, at start: nothing the
/// daemon's process held may leak into the sandbox).
pub fn close_descriptors_above(keep: RawFd) -> io::Result<()> {
    // SAFETY: close_range closes descriptors only; nothing in this process
    // holds one above `keep` this early (the worker calls it first thing).
    let result = unsafe { nix::libc::syscall(nix::libc::SYS_close_range, keep + 1, u32::MAX, 0) };
    if result == 0 {
        return Ok(());
    }
    // Kernels before 5.9: close what /proc lists.
    let fds: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd > keep)
        .collect();
    for fd in fds {
        // SAFETY: as above; a descriptor the listing itself used is gone by
        // now and closing it again only fails with EBADF.
        unsafe { nix::libc::close(fd) };
    }
    Ok(())
}
