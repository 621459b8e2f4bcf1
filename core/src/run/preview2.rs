//! A loaded component with its imports resolved against the host's linker
//! ([`PreparedComponent`]), kept with it so a start only instantiates.
//!
//! Building the component linker (every WASI 0.2 interface and Arcella's
//! own: a few hundred functions) took 260 µs, and checking a component's
//! imports against it more, at every start of every component. What an
//! instance links depends on its grants in two ways: the socket refusals
//! (TCP and UDP, each granted or not: four shapes, each resolved once)
//! and typed calls to providers, whose router is the instance's own: a
//! component that imports another module's interface is linked afresh at
//! every start (every other one links nothing of the router, though an
//! instance in a worker always has one, the proxy to the daemon's).

use super::{GuestFailure, Invocation};
use crate::host::ComponentState;
use crate::host::network::NetworkRules;
use std::sync::{Arc, Mutex, PoisonError};
use wasmtime::component::{Component, InstancePre, Linker};

/// A loaded component, with its imports resolved per socket-grant shape on
/// first use; clones share the resolutions. Reads as the [`Component`] it
/// holds.
#[derive(Clone)]
pub struct PreparedComponent {
    component: Component,
    /// Indexed by [`shape`].
    pres: Arc<Mutex<[Option<InstancePre<ComponentState>>; 4]>>,
    /// Whether it imports interfaces only other modules provide.
    calls_providers: bool,
}

impl PreparedComponent {
    pub fn new(component: Component) -> Self {
        let calls_providers = !crate::host::typed::needed(component.engine(), &component).is_empty();
        Self {
            component,
            pres: Arc::default(),
            calls_providers,
        }
    }

    /// The component linked against everything the host provides (and the
    /// refusals the run's network grant calls for), ready to instantiate.
    pub(super) fn instance_pre(&self, command: &Invocation<'_>) -> Result<InstancePre<ComponentState>, GuestFailure> {
        if self.calls_providers {
            return self.resolve(command);
        }
        let shape = shape(&command.grants.network);
        if let Some(pre) = &self.lock()[shape] {
            return Ok(pre.clone());
        }
        // Resolved outside the lock: two first starts at once both do it.
        let pre = self.resolve(command)?;
        Ok(self.lock()[shape].get_or_insert(pre).clone())
    }

    fn resolve(&self, command: &Invocation<'_>) -> Result<InstancePre<ComponentState>, GuestFailure> {
        let engine = self.component.engine();
        let mut linker: Linker<ComponentState> = Linker::new(engine);
        crate::host::link_component(&mut linker)?;
        crate::host::network::refuse::link(&mut linker, &command.grants.network)?;
        if let Some(calls) = &command.host.calls {
            crate::host::typed::link(&mut linker, engine, &self.component, calls.clone())?;
        }
        linker
            .instantiate_pre(&self.component)
            .map_err(|e| GuestFailure::Link(format!("{e:#}")))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, [Option<InstancePre<ComponentState>>; 4]> {
        self.pres.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Which socket refusals an instance is linked with: TCP granted or not,
/// UDP granted or not.
fn shape(rules: &NetworkRules) -> usize {
    usize::from(rules.tcp()) | usize::from(rules.udp_allowed()) << 1
}

impl std::fmt::Debug for PreparedComponent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let resolved = self.lock().iter().filter(|pre| pre.is_some()).count();
        f.debug_struct("PreparedComponent")
            .field("resolved_shapes", &resolved)
            .finish_non_exhaustive()
    }
}

impl From<Component> for PreparedComponent {
    fn from(component: Component) -> Self {
        Self::new(component)
    }
}

impl std::ops::Deref for PreparedComponent {
    type Target = Component;

    fn deref(&self) -> &Component {
        &self.component
    }
}
