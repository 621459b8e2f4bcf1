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

/// Keeps only the code a long-running process uses resident: every
/// private, read-only, executable mapping of a file whose pages are all
/// still the file's (its own executable's code, and that of libc, libm,
/// the dynamic loader) is advised
/// `MADV_RANDOM`, which turns off read-ahead for it (a fault reads its own
/// page from the storage, no more; the kernel still maps up to 64 KiB of
/// neighbours already in the page cache), and dropped from the page tables
/// once (`MADV_DONTNEED`): the pages are clean copies of the file, faulted
/// back in from the page cache as they are used. For the daemon, after
/// start-up: its argument parser, configuration reader, the verbs it never
/// runs and the C library's start-up code then cost nothing resident.
///
/// Only code: read-only data may have been relocated (written before the
/// loader made it read-only), and `MADV_DONTNEED` would give it back the
/// file's unrelocated bytes. `/proc/self/smaps` says which mappings hold
/// anonymous pages, but not always truly: under qemu-user every figure in
/// it is 0, and advising relocated data there crashed the daemon. Code is
/// never written; a mapping that holds anonymous pages anyway is left
/// alone too. Returns the bytes advised.
pub fn keep_only_used_code() -> std::io::Result<usize> {
    let smaps = std::fs::read_to_string("/proc/self/smaps")?;
    let mut advised = 0;
    for (start, len) in clean_code_mappings(&smaps) {
        for advice in [nix::libc::MADV_RANDOM, nix::libc::MADV_DONTNEED] {
            // SAFETY: [start, start + len) is one whole private, read-only,
            // executable file mapping of this process: code, which no
            // loader relocates in place (no text relocations) and nothing
            // writes without first making it writable, which this process
            // does not do to its own or its libraries' code; and it held no
            // anonymous page when read just above. Advice about it changes
            // no contents, only how its pages are read in and which are
            // resident.
            let status = unsafe { nix::libc::madvise(start as *mut nix::libc::c_void, len, advice) };
            if status != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        advised += len;
    }
    Ok(advised)
}

/// The private, read-only, executable file mappings in `smaps`
/// (`/proc/PID/smaps`) whose pages are all the file's (`Anonymous: 0 kB`),
/// as (start, length).
fn clean_code_mappings(smaps: &str) -> Vec<(usize, usize)> {
    let mut clean = Vec::new();
    let mut current: Option<(usize, usize)> = None;
    for line in smaps.lines() {
        if let Some(range) = mapping_header(line) {
            current = range;
        } else if let Some(anonymous) = line.strip_prefix("Anonymous:")
            && let Some(range) = current.take()
            && anonymous.trim() == "0 kB"
        {
            clean.push(range);
        }
    }
    clean
}

/// For a mapping's header line ("START-END PERMS OFFSET DEV INODE PATH"):
/// `Some(Some(range))` if it is a private, read-only, executable mapping of a file,
/// `Some(None)` for any other mapping; `None` for a field line.
fn mapping_header(line: &str) -> Option<Option<(usize, usize)>> {
    let mut fields = line.split_whitespace();
    let (start, end) = fields.next()?.split_once('-')?;
    let start = usize::from_str_radix(start, 16).ok()?;
    let end = usize::from_str_radix(end, 16).ok()?;
    let perms = fields.next()?;
    let path = fields.nth(3);
    let code = perms == "r-xp";
    let of_a_file = path.is_some_and(|p| p.starts_with('/'));
    Some((code && of_a_file && end > start).then_some((start, end - start)))
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

    /// `Rss` summed over this process's mappings `(perms, path)` selects, in KiB.
    fn resident_kib(select: impl Fn(&str, &str) -> bool) -> u64 {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let mut ours = false;
        let mut total = 0;
        for line in smaps.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() >= 5 && fields[0].contains('-') && !line.ends_with(" kB") {
                ours = select(fields[1], fields.get(5).copied().unwrap_or(""));
            } else if ours && let Some(rest) = line.strip_prefix("Rss:") {
                total += rest.trim().trim_end_matches(" kB").trim().parse::<u64>().unwrap();
            }
        }
        total
    }

    /// In a process of its own, as the daemon calls it. A file mapped
    /// private, read-only and executable and read through (what the
    /// daemon's code and its libraries' are) is let go and stays so while
    /// nothing touches it; the executable's code is among what was
    /// advised; relocated read-only data is left as the loader wrote it.
    /// (The executable's own resident code is no measure: the measuring
    /// code faults back 64 KiB around each page it runs.)
    #[test]
    fn clean_code_pages_are_let_go_and_relocated_data_kept() {
        if ran_alone("clean_code_pages_are_let_go_and_relocated_data_kept") {
            return;
        }
        // Beside the test binary: /tmp may forbid executable mappings.
        let dir = tempfile::tempdir_in(std::env::current_exe().unwrap().parent().unwrap()).unwrap();
        let path = dir.path().join("pages");
        std::fs::write(&path, vec![7u8; 256 * 1024]).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        let len = std::num::NonZeroUsize::new(256 * 1024).unwrap();
        let protection = nix::sys::mman::ProtFlags::PROT_READ | nix::sys::mman::ProtFlags::PROT_EXEC;
        // SAFETY: a fresh mapping at an address the kernel picks, read
        // below and never unmapped before the process ends.
        let start =
            unsafe { nix::sys::mman::mmap(None, len, protection, nix::sys::mman::MapFlags::MAP_PRIVATE, &file, 0) }
                .unwrap();
        // SAFETY: the mapping just made, of `len` bytes, is only read.
        let pages = unsafe { std::slice::from_raw_parts(start.as_ptr().cast::<u8>(), len.get()) };
        assert_eq!(pages.iter().map(|b| u64::from(*b)).sum::<u64>(), 7 * 256 * 1024);
        let ours = || resident_kib(|perms, shown| perms == "r-xp" && shown == path.to_str().unwrap());
        assert_eq!(ours(), 256, "the mapping read through is resident");

        let advised = super::keep_only_used_code().unwrap();
        assert_eq!(ours(), 0, "a clean file mapping nothing touches stays let go");
        let exe_code: u64 = {
            let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
            let exe = std::fs::read_link("/proc/self/exe").unwrap();
            maps.lines()
                .filter(|l| l.contains(" r-xp ") && l.ends_with(exe.to_str().unwrap()))
                .map(|l| {
                    let (a, b) = l.split_whitespace().next().unwrap().split_once('-').unwrap();
                    u64::from_str_radix(b, 16).unwrap() - u64::from_str_radix(a, 16).unwrap()
                })
                .sum()
        };
        assert!(
            advised as u64 >= exe_code + 256 * 1024,
            "{advised} bytes advised, the code alone is {exe_code}"
        );
        // Relocated read-only data (vtables) was left as the loader wrote
        // it: a call through a trait object still lands.
        let shown: Box<dyn std::fmt::Display> = Box::new(42_u32);
        assert_eq!(format!("{shown}"), "42");
    }

    /// What may be dropped and faulted back: only code, in private file
    /// mappings none of whose pages were written (relocated read-only data
    /// would come back unrelocated, and smaps does not always say truly
    /// which data was: under qemu-user it says 0 for everything).
    #[test]
    fn only_clean_code_mappings_are_let_go() {
        let smaps = "\
5600000-5700000 r-xp 00000000 08:01 1234 /usr/bin/arcella
Rss:                1920 kB
Anonymous:             0 kB
5700000-5710000 r--p 00100000 08:01 1234 /usr/bin/arcella
Anonymous:            64 kB
5710000-5711000 rw-p 00110000 08:01 1234 /usr/bin/arcella
Anonymous:             4 kB
5711000-5712000 rw-p 00000000 00:00 0 [heap]
Anonymous:             4 kB
7f00000-7f10000 r--s 00000000 08:01 99 /dev/shm/shared
Anonymous:             0 kB
7f10000-7f20000 r--p 00000000 08:01 77 /usr/lib/libc.so.6
Anonymous:             0 kB
7f30000-7f40000 r-xp 00010000 08:01 77 /usr/lib/libc.so.6
Anonymous:             0 kB
7f40000-7f50000 r-xp 00000000 08:01 78 /opt/textrel.so
Anonymous:             8 kB
7f20000-7f21000 r-xp 00000000 00:00 0 [vdso]
Anonymous:             0 kB
7f21000-7f22000 r--p 00000000 00:00 0
Anonymous:             0 kB
";
        assert_eq!(
            super::clean_code_mappings(smaps),
            vec![(0x5600000, 0x100000), (0x7f30000, 0x10000)]
        );
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
