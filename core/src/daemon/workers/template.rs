//! Worker templates, the daemon's side: an `arcella-worker --template`
//! process per big code file that workers run (`workers.template_above`),
//! holding it loaded, from which the workers that run it are forked
//! instead of exec'd (see the worker's `template.rs` and docs/security.md,
//! "Workers forked from a template"). What wasmtime builds when it loads
//! the code (megabytes of metadata for an interpreter built into a
//! component) is then one copy, shared copy-on-write, not one per worker.
//!
//! A template lives while a worker forked from it does: each worker holds
//! it, and the last one to go takes it along (SIGKILL; it holds nothing to
//! save). The pool keeps only a weak reference per code file.

use super::PoolInner;
use super::process::{relay_stderr, with_deadline};
use crate::artifact::ArtifactKind;
use crate::protocol::template::{FromTemplate, ToTemplate};
use crate::protocol::worker::{Link, WORKER_PROTOCOL_VERSION, receive, receive_buffer, send};
use crate::sys::process::{self as proc, Jail};
use crate::sys::seqpacket::SeqPacket;
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;

/// Which code a template holds: the code file (the store never rewrites
/// one in place, so device, inode and size name its contents; its change
/// time does not, as each group's link to it changes it) and the engine
/// variant. The template keeps the file open, so its inode cannot be
/// reused by another file while the template lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct CodeKey {
    dev: u64,
    ino: u64,
    size: u64,
    metered: bool,
}

impl CodeKey {
    pub(super) fn of(file: &File, metered: bool) -> std::io::Result<Self> {
        let meta = file.metadata()?;
        Ok(Self {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            metered,
        })
    }

    pub(super) fn size(&self) -> u64 {
        self.size
    }
}

/// A running template.
pub(crate) struct Template {
    pub pid: u32,
    link: Link,
    executor: Arc<smol::Executor<'static>>,
}

impl std::fmt::Debug for Template {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Template")
            .field("pid", &self.pid)
            .finish_non_exhaustive()
    }
}

impl Template {
    /// Starts a template and has it load `code` (a verified code file).
    pub(super) async fn start(
        pool: &PoolInner,
        code: &File,
        metered: bool,
        kind: ArtifactKind,
    ) -> Result<Arc<Self>, String> {
        let binary = pool.binary.clone()?;
        // Its own open file description: the worker that runs the code
        // reads the one it is given from its own offset.
        let own = File::open(format!("/proc/self/fd/{}", code.as_raw_fd()))
            .map_err(|e| format!("cannot reopen the code file: {e}"))?;
        let (ours, theirs) = SeqPacket::pair().map_err(|e| e.to_string())?;
        // The daemon's user (it gives each child its group's uid), no
        // cgroup and no data limit of a group: it holds the code for all.
        let jail = Jail {
            user: None,
            data_limit: None,
            open_files: own_open_files(),
            cgroup_procs: None,
        };
        let mut child =
            proc::spawn_jailed(&binary, &["--template"], theirs.into_owned_fd(), &jail).map_err(|e| e.to_string())?;
        let pid = child.id();
        let link: Link = Arc::new(smol::Async::new(ours).map_err(|e| e.to_string())?);
        let template = Arc::new(Self {
            pid,
            link,
            executor: pool.executor.clone(),
        });
        if let Some(pipe) = child.stderr.take() {
            pool.executor
                .spawn(relay_stderr(format!("template {pid}"), pid, OwnedFd::from(pipe)))
                .detach();
        }
        let load = ToTemplate::Load {
            version: WORKER_PROTOCOL_VERSION,
            profile: pool.profile.clone(),
            fingerprint: pool.fingerprint.clone(),
            metered,
            kind,
        };
        match template.ask(pool, load, Some(own.into())).await? {
            (FromTemplate::Loaded, _) => Ok(template),
            (other, _) => Err(format!("it answered the load with {other:?}")),
        }
    }

    /// Forks a worker jailed as `jail` with `ipc` as its link; its pid and
    /// the read end of its stderr.
    pub(super) async fn fork(
        &self,
        pool: &PoolInner,
        group: &str,
        jail: &Jail,
        ipc: OwnedFd,
    ) -> Result<(u32, OwnedFd), String> {
        let fork = ToTemplate::Fork {
            group: group.to_owned(),
            daemon: std::process::id(),
            user: jail.user,
            data_limit: jail.data_limit,
            open_files: jail.open_files,
            cgroup_procs: jail.cgroup_procs.clone(),
        };
        match self.ask(pool, fork, Some(ipc)).await? {
            (FromTemplate::Forked { pid }, Some(stderr)) => Ok((pid, stderr)),
            (other, _) => Err(format!("it answered the fork with {other:?}")),
        }
    }

    /// One request and its answer, within `workers.ipc_timeout`.
    async fn ask(
        &self,
        pool: &PoolInner,
        message: ToTemplate,
        fd: Option<OwnedFd>,
    ) -> Result<(FromTemplate, Option<OwnedFd>), String> {
        let exchange = async {
            send(&self.link, &message, fd).await?;
            receive::<FromTemplate>(&self.link, &mut receive_buffer()).await
        };
        match with_deadline(pool.config.ipc_timeout, exchange).await {
            Some(Ok(Some((FromTemplate::Refused { reason }, _)))) => Err(reason),
            Some(Ok(Some(answer))) => Ok(answer),
            Some(Ok(None)) => Err("it ended".into()),
            Some(Err(e)) => Err(e.to_string()),
            None => Err(format!(
                "it did not answer within {}",
                crate::run::humanize(pool.config.ipc_timeout)
            )),
        }
    }
}

impl Drop for Template {
    fn drop(&mut self) {
        proc::signal(self.pid, true);
        let pid = self.pid;
        self.executor
            .spawn(async move {
                let mut step = std::time::Duration::from_millis(1);
                loop {
                    match proc::try_reap(pid) {
                        Ok(None) => {}
                        Ok(Some(_)) | Err(_) => return,
                    }
                    smol::Timer::after(step).await;
                    step = (step * 2).min(std::time::Duration::from_millis(100));
                }
            })
            .detach();
    }
}

/// This process's open-file limit, which the template keeps: it must not
/// go below what a group's worker may be given.
#[allow(clippy::useless_conversion)] // rlim_t is 32 bits on armv7
fn own_open_files() -> u64 {
    nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).map_or(1024, |(soft, _)| u64::from(soft))
}

/// The template for `code`, started if need be; `None` (and the worker is
/// exec'd as usual) if the code is smaller than `workers.template_above`,
/// templates are off, or one cannot be had (said in the log).
pub(super) async fn template_for(
    pool: &PoolInner,
    group: &str,
    code: &File,
    metered: bool,
    kind: ArtifactKind,
) -> Option<Arc<Template>> {
    let above = pool.config.template_above?;
    let key = CodeKey::of(code, metered).ok()?;
    if key.size() < above {
        return None;
    }
    if let Some(running) = pool.templates().get(&key).and_then(std::sync::Weak::upgrade) {
        return Some(running);
    }
    match Template::start(pool, code, metered, kind).await {
        Ok(template) => {
            log::info!(
                "worker template (pid {}) holds a {} code file; workers that run it are forked from it",
                template.pid,
                crate::units::format_bytes(key.size())
            );
            let mut templates = pool.templates();
            templates.retain(|_, weak| weak.strong_count() > 0);
            templates.insert(key, Arc::downgrade(&template));
            Some(template)
        }
        Err(e) => {
            log::warn!("worker `{group}`: no template for its code ({e}); starting it afresh");
            None
        }
    }
}

/// Forgets `template` (it failed a fork): the next worker for its code
/// starts a new one; the workers forked from it keep it until they end.
pub(super) fn forget(pool: &PoolInner, template: &Arc<Template>) {
    pool.templates()
        .retain(|_, weak| !std::ptr::eq(weak.as_ptr(), Arc::as_ptr(template)));
}
