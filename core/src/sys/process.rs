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

/// A [`Jail`] made ready for the child: what needs allocating is done
/// before the fork.
struct PreparedJail {
    cgroup: Option<CString>,
    data_limit: Option<nix::libc::rlim_t>,
    open_files: nix::libc::rlim_t,
}

impl PreparedJail {
    fn of(jail: &Jail) -> io::Result<Self> {
        let cgroup = match &jail.cgroup_procs {
            Some(path) => Some(
                CString::new(path.as_os_str().as_encoded_bytes())
                    .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a cgroup path with a NUL byte"))?,
            ),
            None => None,
        };
        // rlim_t is 32 bits on armv7: a limit beyond it means "as much as fits".
        let rlim = |v: u64| nix::libc::rlim_t::try_from(v).unwrap_or(nix::libc::rlim_t::MAX);
        Ok(Self {
            cgroup,
            data_limit: jail.data_limit.map(rlim),
            open_files: rlim(jail.open_files),
        })
    }

    /// The jail's steps in the child, after its uid changed (which would
    /// otherwise clear the parent-death signal): a session of its own,
    /// SIGKILL when `parent` dies, no new privileges, the limits, the
    /// cgroup, and `ipc` as fd 3. Async-signal-safe system calls only, on
    /// data prepared before the fork; allocates nothing.
    fn enter(&self, parent: Pid, ipc: RawFd) -> io::Result<()> {
        nix::unistd::setsid().map_err(io::Error::from)?;
        nix::sys::prctl::set_pdeathsig(Some(Signal::SIGKILL)).map_err(io::Error::from)?;
        if nix::unistd::getppid() != parent {
            // The daemon died between fork and prctl.
            return Err(io::Error::other("the daemon is gone"));
        }
        nix::sys::prctl::set_no_new_privs().map_err(io::Error::from)?;
        setrlimit(Resource::RLIMIT_CORE, 0, 0).map_err(io::Error::from)?;
        setrlimit(Resource::RLIMIT_NOFILE, self.open_files, self.open_files).map_err(io::Error::from)?;
        if let Some(limit) = self.data_limit {
            setrlimit(Resource::RLIMIT_DATA, limit, limit).map_err(io::Error::from)?;
        }
        if let Some(procs) = &self.cgroup {
            join_cgroup(procs)?;
        }
        // dup2 onto fd 3 clears close-on-exec on the copy; if the socket
        // already is fd 3, clear the flag instead.
        if ipc == IPC_FD {
            clear_cloexec(ipc)?;
        } else if dup2(ipc, IPC_FD) < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// `dup2`, async-signal-safe.
fn dup2(from: RawFd, to: RawFd) -> nix::libc::c_int {
    // SAFETY: dup2 only changes this process's descriptor table.
    unsafe { nix::libc::dup2(from, to) }
}

/// Starts `program` jailed, with `ipc` as its fd 3, an empty environment,
/// stdin and stdout on /dev/null, stderr piped back to the caller, `/` as
/// its working directory, in a session of its own, and killed by SIGKILL
/// if the daemon dies.
pub fn spawn_jailed(program: &Path, args: &[&str], ipc: OwnedFd, jail: &Jail) -> io::Result<Child> {
    let prepared = PreparedJail::of(jail)?;
    let parent = nix::unistd::getpid();
    let ipc_raw = ipc.as_raw_fd();
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
    // SAFETY: the closure runs in the forked child before exec, after std
    // changed its uid. `enter` calls only async-signal-safe system calls
    // on data prepared before the fork, and allocates nothing.
    unsafe {
        command.pre_exec(move || prepared.enter(parent, ipc_raw));
    }
    let child = command.spawn();
    drop(ipc);
    child
}

/// Which side of [`fork_jailed`] this is.
#[derive(Debug)]
pub enum Forked {
    /// The new worker: jailed, `ipc` on fd 3, stderr on the pipe.
    Child,
    /// The caller: the child's pid and the read end of its stderr.
    Parent { pid: u32, stderr: OwnedFd },
}

/// Forks a worker from this process (a template, which holds its code
/// loaded) without exec: the child keeps this process's memory, shared
/// copy-on-write, and is jailed as [`spawn_jailed`] jails: the same uid
/// change (supplementary groups dropped, gid, uid), then the same steps.
/// It is made the child of this process's parent, `parent` (the daemon:
/// `CLONE_PARENT`), so the daemon reaps it and its death kills it, as for
/// a worker it spawned. Its stderr is a new pipe whose read end the caller
/// gets; stdin and stdout stay this process's (/dev/null).
///
/// The caller must be single-threaded: the child is a copy of the calling
/// thread alone, and the raw `clone` runs no `pthread_atfork` handlers.
///
/// `title` (arguments each ending in a NUL) becomes the child's command
/// line where it may change it (root: `CAP_SYS_RESOURCE`), so that `ps`
/// shows it as the worker it is, not as the template it was forked from.
pub fn fork_jailed(ipc: OwnedFd, jail: &Jail, parent: u32, title: &[u8]) -> io::Result<Forked> {
    let prepared = PreparedJail::of(jail)?;
    let parent = Pid::from_raw(parent as i32);
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(io::Error::from)?;
    let flags = (nix::libc::CLONE_PARENT | nix::libc::SIGCHLD) as nix::libc::c_ulong;
    // SAFETY: clone without CLONE_VM and with no new stack is fork with
    // another parent: the child gets a copy of this address space and of
    // this (the only) thread. Nothing in the child relies on glibc's
    // cached thread id (Rust's locks are futexes of their own), and no
    // lock is held across this call in a single-threaded process.
    let pid = unsafe { nix::libc::syscall(nix::libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid > 0 {
        drop(write);
        drop(ipc);
        return Ok(Forked::Parent {
            pid: pid as u32,
            stderr: read,
        });
    }
    // The child. Its errors go to its own stderr, which the daemon reads.
    drop(read);
    if dup2(write.as_raw_fd(), 2) < 0 {
        return Err(io::Error::last_os_error());
    }
    drop(write);
    if let Err(e) = set_command_line(title) {
        log::debug!("the forked worker keeps the template's command line: {e}");
    }
    if let Some((uid, gid)) = jail.user {
        nix::unistd::setgroups(&[]).map_err(io::Error::from)?;
        nix::unistd::setgid(nix::unistd::Gid::from_raw(gid)).map_err(io::Error::from)?;
        nix::unistd::setuid(nix::unistd::Uid::from_raw(uid)).map_err(io::Error::from)?;
    }
    prepared.enter(parent, ipc.as_raw_fd())?;
    if ipc.as_raw_fd() != IPC_FD {
        drop(ipc);
    } else {
        // fd 3 is the link now: the worker takes it over by number.
        std::mem::forget(ipc);
    }
    Ok(Forked::Child)
}

/// Shows `line` (NUL-terminated arguments) as this process's command line
/// (`/proc/PID/cmdline`, `ps`): pointed at with `PR_SET_MM` where the
/// process may (`CAP_SYS_RESOURCE`), else written over its original
/// arguments (cut to their length).
fn set_command_line(line: &[u8]) -> io::Result<()> {
    // A copy for the process's life (the caller is single-threaded).
    let kept: &'static [u8] = Box::leak(line.to_vec().into_boxed_slice());
    let start = kept.as_ptr() as nix::libc::c_ulong;
    let end = start + kept.len() as nix::libc::c_ulong;
    // The start first: the new line lies below the old one (the heap is
    // below the initial stack), so start <= end holds after each step.
    for (field, address) in [
        (nix::libc::PR_SET_MM_ARG_START, start),
        (nix::libc::PR_SET_MM_ARG_END, end),
    ] {
        // SAFETY: PR_SET_MM only records where the kernel reads the command
        // line from; `kept` is leaked, so it stays mapped and unchanged.
        let result = unsafe { nix::libc::prctl(nix::libc::PR_SET_MM, field as nix::libc::c_ulong, address, 0, 0) };
        if result != 0 {
            return overwrite_arguments(line);
        }
    }
    Ok(())
}

/// Writes `line` over this process's original arguments, NUL-padded to
/// their end and cut to their length.
fn overwrite_arguments(line: &[u8]) -> io::Result<()> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // Fields 48 and 49 (arg_start, arg_end), counted after the command name.
    let fields: Vec<usize> = stat
        .rsplit_once(')')
        .map(|(_, rest)| {
            rest.split_whitespace()
                .skip(45)
                .take(2)
                .filter_map(|f| f.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    let [start, end] = fields[..] else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "no argument area in /proc/self/stat",
        ));
    };
    let len = end.saturating_sub(start);
    if len == 0 {
        return Err(io::Error::other("an empty argument area"));
    }
    let written = line.len().min(len - 1);
    // SAFETY: [start, end) is this process's argument area on its initial
    // stack (the kernel's own record of it), mapped writable for the
    // process's life; nothing holds a Rust reference into it (std reads
    // the C strings there afresh when asked for the arguments).
    unsafe {
        std::ptr::copy_nonoverlapping(line.as_ptr(), start as *mut u8, written);
        std::ptr::write_bytes((start + written) as *mut u8, 0, len - written);
    }
    Ok(())
}

/// How many threads this process has (`/proc/self/stat`, field 20).
pub fn thread_count() -> io::Result<usize> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // The command name (field 2) may hold spaces: count after its ')'.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(17)?.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "an unreadable /proc/self/stat"))
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

/// This process's open descriptors above `above`, ascending.
pub fn descriptors_above(above: RawFd) -> io::Result<Vec<RawFd>> {
    let listing = std::fs::read_dir("/proc/self/fd")?;
    let mut fds: Vec<RawFd> = listing
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd > above)
        .collect();
    // The listing's own descriptor is closed by now.
    // SAFETY: F_GETFD only reads the descriptor's flags (EBADF if closed).
    fds.retain(|fd| unsafe { nix::libc::fcntl(*fd, nix::libc::F_GETFD) } >= 0);
    fds.sort_unstable();
    Ok(fds)
}

/// Closes every descriptor above `keep` but those in `also` (ascending):
/// nothing the daemon's process held may leak into a worker's sandbox; a
/// worker forked from a template keeps the files its inherited program
/// maps its memory images from.
pub fn close_descriptors_above_but(keep: RawFd, also: &[RawFd]) -> io::Result<()> {
    let mut from = keep + 1;
    for &kept in also.iter().filter(|fd| **fd > keep) {
        close_range(from, kept - 1)?;
        from = kept + 1;
    }
    close_range(from, RawFd::MAX)
}

/// Closes the descriptors `first..=last` (nothing if the range is empty).
fn close_range(first: RawFd, last: RawFd) -> io::Result<()> {
    if first > last {
        return Ok(());
    }
    // SAFETY: close_range closes descriptors only; the caller owns them.
    let result = unsafe { nix::libc::syscall(nix::libc::SYS_close_range, first as u32, last as u32, 0) };
    if result == 0 {
        return Ok(());
    }
    // Kernels before 5.9: close what /proc lists.
    for fd in descriptors_above(first - 1)?.into_iter().filter(|fd| *fd <= last) {
        // SAFETY: as above.
        unsafe { nix::libc::close(fd) };
    }
    Ok(())
}
