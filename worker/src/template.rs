//! `arcella-worker --template`: a process that holds one big artifact
//! loaded and forks the workers that run it (docs/security.md, "Workers
//! forked from a template"). Each child starts with the loaded program
//! (wasmtime's metadata of the code: megabytes for an interpreter built
//! into a component) shared copy-on-write with the template and its other
//! children, where a worker started by exec loads its own copy.
//!
//! The template runs as the daemon's user, so that it can give each
//! child its group's uid; it never runs guest code, reads nothing but the
//! daemon's link and the code file the daemon passed, and stays
//! single-threaded (a fork copies only the calling thread). Its children
//! drop to their group's uid, jail themselves as a spawned worker does
//! (`fork_jailed`), replace the template's link with their own on fd 3,
//! and then are workers like any other: they close every other
//! descriptor, raise their walls and seccomp, and greet the daemon.

use crate::WorkerError;
use crate::programs::ProgramKey;
use crate::serve::{Preloaded, agree, load};
use arcella_core::engine::EngineSet;
use arcella_core::protocol::template::{FromTemplate, ToTemplate};
use arcella_core::protocol::worker;
use arcella_core::sys::process::{Forked, IPC_FD, Jail, descriptors_above, fork_jailed, thread_count};
use arcella_core::sys::seqpacket::SeqPacket;
use std::fs::File;
use std::os::fd::AsFd;
use zeroize::Zeroize;

/// Serves the daemon on `link`: loads the code of the first message, then
/// forks a worker per request. Returns `Some` in a forked child (which
/// goes on as a worker with what was loaded), `None` in the template once
/// the daemon closed the link.
pub fn serve(link: &SeqPacket) -> Result<Option<Preloaded>, WorkerError> {
    let mut buf = worker::receive_buffer();
    let reply = |message: &FromTemplate, fd: Option<std::os::fd::BorrowedFd<'_>>| -> Result<(), WorkerError> {
        let bytes = worker::encode(message).map_err(std::io::Error::other)?;
        link.send(&bytes, fd)?;
        Ok(())
    };
    let (len, code) = link.recv(&mut buf)?;
    if len == 0 {
        return Ok(None);
    }
    let loaded = match (worker::decode::<ToTemplate>(&buf[..len]), code) {
        (
            Ok(ToTemplate::Load {
                version,
                profile,
                fingerprint,
                metered,
                kind,
            }),
            Some(code),
        ) => {
            agree(version, &profile, &fingerprint).and_then(|()| {
                let engines = EngineSet::sharing_code_files(&profile).map_err(|e| e.to_string())?;
                let engine = engines.engine(metered).map_err(|e| e.to_string())?;
                let file = File::from(code);
                let key = ProgramKey::of(&file, metered);
                // Held open for the template's life (and in its children
                // while they hold the program): the daemon knows this code
                // by its inode, which no other file can take while it is.
                let code = file
                    .try_clone()
                    .map_err(|e| format!("cannot keep the code file open: {e}"))?;
                let program = load(engine, engines.file_code(), kind, file)?;
                // Nothing else is open above the link now: what is, the
                // program holds.
                let held = descriptors_above(IPC_FD).map_err(|e| format!("cannot list its descriptors: {e}"))?;
                Ok(Preloaded {
                    engines,
                    program,
                    key,
                    code: std::sync::Arc::new(code),
                    held,
                })
            })
        }
        (Ok(other), _) => Err(format!("the daemon opened with {other:?} and no code file")),
        (Err(e), _) => Err(format!("a message that does not decode: {e}")),
    };
    let loaded = match loaded {
        Ok(loaded) => loaded,
        Err(reason) => {
            reply(&FromTemplate::Refused { reason: reason.clone() }, None)?;
            return Err(WorkerError::Refused(reason));
        }
    };
    reply(&FromTemplate::Loaded, None)?;
    loop {
        let (len, ipc) = link.recv(&mut buf)?;
        if len == 0 {
            return Ok(None);
        }
        let request = worker::decode::<ToTemplate>(&buf[..len]).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("a message that does not decode: {e}"),
            )
        });
        // What this fork was for (a group's uid and cgroup) is no business
        // of the next child: the buffer is cleared before any fork.
        buf.fill(0);
        let (
            ToTemplate::Fork {
                group,
                daemon,
                user,
                data_limit,
                open_files,
                cgroup_procs,
            },
            Some(ipc),
        ) = (request?, ipc)
        else {
            reply(
                &FromTemplate::Refused {
                    reason: "expected a fork request with its link".into(),
                },
                None,
            )?;
            continue;
        };
        match thread_count() {
            Ok(1) => {}
            Ok(n) => {
                let reason = format!("the template has {n} threads; it forks only while it has one");
                reply(&FromTemplate::Refused { reason }, None)?;
                continue;
            }
            Err(e) => {
                reply(
                    &FromTemplate::Refused {
                        reason: format!("cannot count its threads: {e}"),
                    },
                    None,
                )?;
                continue;
            }
        }
        let jail = Jail {
            user,
            data_limit,
            open_files,
            cgroup_procs,
        };
        // As `ps` shows a worker the daemon spawned.
        let title = format!("arcella-worker\0--group\0{group}\0");
        let forked = fork_jailed(ipc, &jail, daemon, title.as_bytes());
        if let Ok(Forked::Child) = forked {
            return Ok(Some(loaded));
        }
        // The next child need not find this one's group in freed memory.
        let mut said = [group.into_bytes(), title.into_bytes()];
        said.iter_mut().for_each(Zeroize::zeroize);
        if let Some(path) = jail.cgroup_procs {
            path.into_os_string().into_encoded_bytes().zeroize();
        }
        match forked {
            Ok(Forked::Parent { pid, stderr }) => reply(&FromTemplate::Forked { pid }, Some(stderr.as_fd()))?,
            Ok(Forked::Child) => {}
            Err(e) => reply(
                &FromTemplate::Refused {
                    reason: format!("cannot fork a worker: {e}"),
                },
                None,
            )?,
        }
    }
}
