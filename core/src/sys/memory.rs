//! Process-wide memory settings for small devices.

/// Makes every thread allocate from glibc's main heap instead of giving
/// each new thread its own malloc arena.
///
/// On 64-bit glibc each extra arena reserves 64 MiB of address space: the
/// daemon's four threads alone reached ~300 MiB of `VmSize`, so it could
/// not run one module under `ulimit -v 262144` (a 256 MiB address space),
/// and a 32-bit device would spend a quarter of its address space on
/// arenas. Arcella's threads allocate little and rarely contend: one arena
/// is enough. Call it first thing in `main`, before threads start. Does
/// nothing on other C libraries (musl has no arenas).
pub fn limit_malloc_arenas() {
    #[cfg(target_env = "gnu")]
    {
        // M_ARENA_MAX from glibc's malloc.h (not exported by the libc crate).
        const M_ARENA_MAX: nix::libc::c_int = -8;
        // SAFETY: mallopt only sets a malloc tunable; it takes no pointers
        // and is safe to call at any time (glibc takes the arena lock).
        let ok = unsafe { nix::libc::mallopt(M_ARENA_MAX, 1) };
        if ok != 1 {
            log::debug!("mallopt(M_ARENA_MAX, 1) was refused; threads keep their own arenas");
        }
    }
}

/// Keeps only the executable's code pages a long-running process uses
/// resident: its read-only image (headers, read-only data, unwind tables,
/// code) is advised `MADV_RANDOM`, which turns off read-ahead for it (a
/// fault reads its own page from the storage, no more; the kernel still
/// maps up to 64 KiB of neighbours already in the page cache), and dropped
/// from the page tables once (`MADV_DONTNEED`: the pages are clean file
/// pages, faulted back in from the page cache as they are used). For the daemon, after
/// start-up: its argument parser, configuration reader and the verbs it
/// never runs then cost nothing resident. Returns the bytes advised.
pub fn keep_only_used_code() -> std::io::Result<usize> {
    unsafe extern "C" {
        // Provided by the GNU and LLVM linkers' default scripts for every
        // executable: the first byte of its image, and the end of its code.
        static __executable_start: u8;
        static etext: u8;
    }
    let page = super::code_map::page_size();
    // Their addresses only: the symbols are never read.
    let (start, end) = ((&raw const __executable_start) as usize, (&raw const etext) as usize);
    let start = start & !(page - 1);
    let len = end.saturating_sub(start);
    for advice in [nix::libc::MADV_RANDOM, nix::libc::MADV_DONTNEED] {
        // SAFETY: [start, start + len) is this executable's own read-only
        // image, mapped for the life of the process: advice about it
        // changes no contents (its pages are clean copies of the file),
        // only how they are read in and which are resident.
        let status = unsafe { nix::libc::madvise(start as *mut nix::libc::c_void, len, advice) };
        if status != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(len)
}

/// This process's address-space limit (RLIMIT_AS: `ulimit -v`, systemd's
/// `LimitAS=`), or `None` when unlimited or unreadable.
pub fn address_space_limit() -> Option<u64> {
    let (soft, _) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_AS).ok()?;
    if soft == nix::sys::resource::RLIM_INFINITY {
        return None;
    }
    #[allow(clippy::useless_conversion)] // rlim_t is 32 bits on armv7
    Some(u64::from(soft))
}

#[cfg(test)]
mod tests {
    /// Runs the test `name` of this module again in a process of its own
    /// (one test thread: nothing else moves the figures it reads) and
    /// checks it passed there; `false` in that process, which does the
    /// test itself.
    fn ran_alone(name: &str) -> bool {
        const ALONE: &str = "ARCELLA_MEMORY_TEST_ALONE";
        if std::env::var_os(ALONE).is_some() {
            return false;
        }
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", &format!("sys::memory::tests::{name}"), "--test-threads", "1"])
            .env(ALONE, "1")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
        assert!(text.contains("1 passed"), "{text}");
        true
    }

    /// The executable's code pages resident (`Rss` of its `r-xp`
    /// mapping), in KiB.
    fn code_resident_kib() -> u64 {
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let mut ours = false;
        let mut total = 0;
        for line in smaps.lines() {
            if line.contains('-') && line.split_whitespace().count() >= 5 && !line.ends_with(" kB") {
                ours = line.contains(" r-xp ") && line.ends_with(exe.to_str().unwrap());
            } else if ours && let Some(rest) = line.strip_prefix("Rss:") {
                total += rest.trim().trim_end_matches(" kB").trim().parse::<u64>().unwrap();
            }
        }
        total
    }

    /// In a process of its own, as the daemon calls it: the code range is
    /// the executable's own, and what it had resident is let go.
    #[test]
    fn only_the_code_in_use_stays_resident() {
        if ran_alone("only_the_code_in_use_stays_resident") {
            return;
        }
        let before = code_resident_kib();
        let advised = super::keep_only_used_code().unwrap();
        let after = code_resident_kib();
        let exe_len = std::fs::metadata("/proc/self/exe").unwrap().len();
        assert!(
            advised > 0 && advised as u64 <= exe_len,
            "{advised} bytes of a {exe_len}-byte file"
        );
        assert!(after < before, "code resident: {before} KiB before, {after} KiB after");
    }
    /// Measured in a process of its own: other tests running threads in
    /// this one would move VmSize while it measures.
    #[test]
    fn threads_started_after_the_call_share_the_main_arena() {
        if ran_alone("threads_started_after_the_call_share_the_main_arena") {
            return;
        }
        super::limit_malloc_arenas();
        let before = vm_size_kib();
        let threads: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(|| {
                    let v = vec![1u8; 4096];
                    std::thread::sleep(std::time::Duration::from_millis(100));
                    v.len()
                })
            })
            .collect();
        std::thread::sleep(std::time::Duration::from_millis(50));
        let during = vm_size_kib();
        for t in threads {
            t.join().unwrap();
        }
        // Four threads with arenas would add 4 x 64 MiB; their stacks add 4 x 2 MiB.
        if cfg!(target_env = "gnu") {
            assert!(during - before < 64 * 1024, "VmSize grew by {} KiB", during - before);
        }
    }

    fn vm_size_kib() -> i64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("VmSize:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }
}
