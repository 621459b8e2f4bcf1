//! Everything Arcella asks of the operating system, in one place.
//!
//! Porting Arcella means editing this module. Code elsewhere uses these
//! functions instead of calling the OS (or `libc`/`nix`) directly.

pub mod cgroup;
pub mod code_map;
pub mod files;
pub mod fs;
pub mod lock;
pub mod memory;
pub mod mount_ns;
pub mod notify;
pub mod process;
pub mod reserve;
pub mod seqpacket;
pub mod signals;
pub mod user;
