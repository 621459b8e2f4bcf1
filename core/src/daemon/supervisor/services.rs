//! The host services the daemon gives each instance it starts, in its
//! own process or (served from here) in a worker.

use super::Supervisor;
use crate::host::keyvalue::backend::{KvGrant, Served};
use crate::host::{Denial, HostServices};
use crate::manifest::DeploymentManifest;
use crate::run::{LogBook, RunError};
use std::sync::Arc;

impl Supervisor {
    /// The services of one instance of `id`, whose log is `book`.
    pub(super) fn services_for(&self, id: &str, book: &LogBook) -> HostServices {
        let module = id.to_owned();
        let book = book.clone();
        HostServices {
            denials: Some(Arc::new(move |denial: Denial| {
                let denial = denial.bounded();
                log::warn!("{module}: {denial}");
                book.note(&denial.to_string());
            })),
            keyvalue: None,
        }
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
        let store = smol::unblock(move || supervisor.inner.kv.open(&module))
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
