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
    /// Measured in a process of its own: other tests running threads in
    /// this one would move VmSize while it measures.
    #[test]
    fn threads_started_after_the_call_share_the_main_arena() {
        const ALONE: &str = "ARCELLA_ARENA_TEST_ALONE";
        if std::env::var_os(ALONE).is_none() {
            let out = std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "sys::memory::tests::threads_started_after_the_call_share_the_main_arena",
                    "--test-threads",
                    "1",
                ])
                .env(ALONE, "1")
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
            assert!(text.contains("1 passed"), "{text}");
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
