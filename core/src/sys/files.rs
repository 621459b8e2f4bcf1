//! The daemon's file-descriptor budget: its open-file limit, raised to
//! what it may have (admission counts in-process guests against it).

use nix::sys::resource::{Resource, getrlimit, setrlimit};
use std::io;

/// Raises this process's soft RLIMIT_NOFILE to its hard limit; returns
/// the limit now in force.
#[allow(clippy::useless_conversion, reason = "rlim_t is 32 bits on armv7")]
pub fn raise_open_files_limit() -> io::Result<u64> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(io::Error::from)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).map_err(io::Error::from)?;
    }
    Ok(u64::from(hard.max(soft)))
}

/// The soft RLIMIT_NOFILE in force now.
#[allow(clippy::useless_conversion, reason = "rlim_t is 32 bits on armv7")]
pub fn open_files_limit() -> u64 {
    getrlimit(Resource::RLIMIT_NOFILE).map_or(1024, |(soft, _)| u64::from(soft))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_is_raised_to_the_hard_one() {
        let limit = raise_open_files_limit().unwrap();
        assert_eq!(open_files_limit(), limit);
    }
}
