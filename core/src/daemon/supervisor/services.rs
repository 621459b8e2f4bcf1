//! The host services the daemon gives each instance it starts, in its
//! own process or (served from here) in a worker.

use super::Supervisor;
use crate::host::keyvalue::backend::{KvGrant, Served};
use crate::host::{ConfigValues, Denial, HostServices};
use crate::manifest::DeploymentManifest;
use crate::protocol::ModuleState;
use crate::protocol::audit::Actor;
use crate::run::{LogBook, RunError};
use std::sync::Arc;

impl Supervisor {
    /// The services of one instance of `id`, whose log is `book`.
    /// `config` is the instance's runtime configuration (config.rs).
    pub(super) fn services_for(&self, id: &str, book: &LogBook, config: ConfigValues) -> HostServices {
        let module = id.to_owned();
        let notes = book.clone();
        let audit = self.inner.audit.clone();
        HostServices {
            denials: Some(Arc::new(move |denial: Denial| {
                let denial = denial.bounded();
                log::warn!("{module}: {denial}");
                notes.note(&denial.to_string());
                let action = format!("denied-{}", denial.capability.word());
                audit.note(Actor::Guest, &action, Some(&module), Err("denied"), &denial.detail);
            })),
            config,
            logs: Some(book.clone()),
            keyvalue: None,
            calls: None,
            messaging: None,
            inbox: None,
        }
    }

    /// Writes a module's lifecycle to the audit trail: starts, exits,
    /// crashes (a restart pending), failures and stops.
    pub(super) fn audit_state(&self, id: &str, state: &ModuleState, last_error: Option<&str>) {
        let (action, outcome, detail) = match state {
            ModuleState::Running => ("started", Ok(()), String::new()),
            ModuleState::Stopped => ("stopped", Ok(()), String::new()),
            ModuleState::Exited { code } => ("exited", Ok(()), format!("exit code {code}")),
            ModuleState::BackingOff { attempt, in_ms } => (
                "crashed",
                Err(last_error.unwrap_or("failed")),
                format!("restart attempt {attempt} in {in_ms} ms"),
            ),
            ModuleState::Failed { reason } => ("failed", Err(reason.as_str()), String::new()),
            ModuleState::Waiting { reason } => ("waiting", Ok(()), reason.clone()),
            ModuleState::Starting | ModuleState::Stopping => return,
        };
        self.inner.audit.note(Actor::Daemon, action, Some(id), outcome, &detail);
    }
}

impl Supervisor {
    /// `services` with the module's key-value store attached, if its
    /// deployment grants one. The database is opened off the executor; a
    /// file that cannot be opened (damaged) fails this instance's start,
    /// naming the file, and no other module's.
    pub(super) async fn with_keyvalue(
        &self,
        id: &str,
        deployment: &DeploymentManifest,
        mut services: HostServices,
    ) -> Result<HostServices, RunError> {
        let Some(grant) = &deployment.capabilities.keyvalue else {
            return Ok(services);
        };
        let supervisor = self.clone();
        let module = id.to_owned();
        let store = crate::offload::offload(move || supervisor.inner.kv.open(&module))
            .await
            .map_err(|e| RunError::Setup {
                module: id.to_owned(),
                message: e.to_string(),
            })?;
        services.keyvalue = Some(Arc::new(Served {
            store,
            grant: KvGrant {
                buckets: grant.buckets.clone(),
                quota: grant.quota(),
            },
            denials: services.denials.clone(),
        }));
        Ok(services)
    }
}

impl Supervisor {
    /// The device's message bus (the MQTT bridge joins it).
    pub fn bus(&self) -> Arc<crate::host::messaging::bus::Bus> {
        self.inner.bus.clone()
    }

    /// `services` with everything the deployment grants attached: the
    /// key-value store, publishing on the bus, and (for a module that
    /// subscribes) its queue on the bus as the handler's inbox. The
    /// subscription lives as long as these services (the instance).
    pub(super) async fn with_backends(
        &self,
        id: &str,
        deployment: &DeploymentManifest,
        services: HostServices,
    ) -> Result<HostServices, RunError> {
        let mut services = self.with_keyvalue(id, deployment, services).await?;
        let Some(grant) = &deployment.capabilities.messaging else {
            return Ok(services);
        };
        let bus = self.inner.bus.clone();
        if !grant.publish.is_empty() {
            services.messaging = Some(Arc::new(crate::host::messaging::backend::Served {
                bus: bus.clone(),
                module: id.to_owned(),
                publish: grant.publish.clone(),
                counters: bus.counters(id),
                denials: services.denials.clone(),
            }));
        }
        if !grant.subscribe.is_empty() {
            services.inbox = Some(Arc::new(bus.subscribe(id, grant.subscribe.clone(), grant.queue())));
        }
        Ok(services)
    }
}
