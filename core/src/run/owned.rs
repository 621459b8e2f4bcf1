//! An [`Invocation`]'s parts, owned, for runs that hand work to tasks of
//! their own (the HTTP server's requests, a provider's calls), which
//! cannot borrow the invocation.

use super::{Invocation, Output};

/// An [`Invocation`]'s parts, owned, so request tasks need no borrow.
pub(super) struct Owned {
    pub(super) name: String,
    pub(super) program: crate::artifact::Program,
    pub(super) grants: super::Grants,
    pub(super) limits: super::Limits,
    pub(super) profile: crate::engine::EngineProfile,
    pub(super) output: Output,
    pub(super) stop: Option<super::StopFlag>,
    pub(super) host: crate::host::HostServices,
    pub(super) usage: Option<std::sync::Arc<super::Usage>>,
}

impl Owned {
    pub(super) fn of(command: &Invocation<'_>) -> Self {
        Self {
            name: command.name.to_owned(),
            program: command.program.clone(),
            grants: command.grants.clone(),
            limits: command.limits.clone(),
            profile: command.profile.clone(),
            output: command.output.clone(),
            stop: command.stop.clone(),
            host: command.host.clone(),
            usage: command.usage.clone(),
        }
    }

    pub(super) fn invocation(&self) -> Invocation<'_> {
        Invocation {
            name: &self.name,
            program: &self.program,
            grants: &self.grants,
            limits: &self.limits,
            profile: &self.profile,
            output: &self.output,
            entrypoint: None,
            stop: self.stop.clone(),
            health: None,
            host: &self.host,
            provide: None,
            usage: self.usage.clone(),
        }
    }
}
