//! Linking consumers to providers (typed calls, daemon/wiring.rs): which
//! running provider each import of a starting module goes to, `waiting`
//! while there is none, waking waiting modules when one starts, and what
//! a consumer does when its provider is stopped or removed.

use super::{Loaded, State, Supervisor};
use crate::artifact::Program;
use crate::daemon::wiring::{Provided, Router};
use crate::host::HostServices;
use crate::host::typed::shape::{func_mismatch, not_callable};
use crate::host::typed::version::{serves, split};
use crate::host::typed::{ProviderHandle, needed, offered};
use crate::manifest::imports::{ANY_PROVIDER, WhenProviderStops};
use crate::protocol::{DesiredState, Isolation, ModuleKind, ModuleState};
use std::collections::BTreeMap;
use std::sync::Arc;
use wasmtime::component::types::ComponentItem;

/// Why a module cannot be linked now.
pub(super) enum Unlinked {
    /// No provider it may use runs yet: it waits (the reason names the import).
    Waiting(String),
    /// Its imports and other modules' form a cycle: it cannot ever start.
    Cycle(String),
}

/// A module's imports that providers serve, and its exports for others.
pub(super) fn interfaces(program: &Program) -> (Vec<String>, Vec<String>) {
    match program {
        Program::Component(c) => (
            needed(c.engine(), c).into_iter().map(|(n, _)| n).collect(),
            offered(c.engine(), c).into_iter().map(|(n, _)| n).collect(),
        ),
        Program::Module(_) => (Vec::new(), Vec::new()),
    }
}

fn item(program: &Program, name: &str, import: bool) -> Option<ComponentItem> {
    let Program::Component(c) = program else { return None };
    let ty = c.component_type();
    let engine = c.engine();
    if import {
        ty.imports(engine).find(|(n, _)| *n == name).map(|(_, i)| i.ty)
    } else {
        ty.exports(engine).find(|(n, _)| *n == name).map(|(_, i)| i.ty)
    }
}

/// Why `provider`'s `export` cannot serve `consumer`'s `import`: a
/// function missing or of another type.
fn misfit(consumer: &Program, import: &str, provider: &Program, export: &str) -> Option<String> {
    let engine = match consumer {
        Program::Component(c) => c.engine().clone(),
        Program::Module(_) => return Some("not a component".to_owned()),
    };
    let (Some(ComponentItem::ComponentInstance(wanted)), Some(ComponentItem::ComponentInstance(given))) =
        (item(consumer, import, true), item(provider, export, false))
    else {
        return Some("not an interface of functions".to_owned());
    };
    let given: BTreeMap<String, ComponentItem> = given.exports(&engine).map(|(n, i)| (n.to_owned(), i.ty)).collect();
    for (name, want) in wanted.exports(&engine) {
        let ComponentItem::ComponentFunc(want) = want.ty else {
            continue;
        };
        match given.get(name) {
            Some(ComponentItem::ComponentFunc(have)) => {
                if let Some(why) = func_mismatch(&want, have) {
                    return Some(format!("function `{name}`: {why}"));
                }
            }
            _ => return Some(format!("it has no function `{name}`")),
        }
    }
    None
}

/// At install: every import a provider must serve is granted by
/// `[imports]` and passes only plain values; a provider's exports too.
pub(super) fn check_imports(program: &Program, deployment: &crate::manifest::DeploymentManifest) -> Result<(), String> {
    let Program::Component(component) = program else {
        return Ok(());
    };
    let engine = component.engine();
    for (import, item) in needed(engine, component) {
        let (interface, _) = split(&import);
        if !deployment.imports.contains_key(interface) {
            return Err(format!(
                "deployment.toml: the component imports `{import}`, which this daemon does not provide and no \
                 [imports] entry grants: add [imports] \"{interface}\" = \"PROVIDER\" (the provider module's id, or \
                 \"*\" for any) to link it to a provider module, or rebuild without the import (`arcella info` lists \
                 what the daemon provides)"
            ));
        }
        if let Some(why) = not_callable(engine, &item) {
            return Err(format!(
                "the component imports `{import}`, which cannot be called across modules: {why}"
            ));
        }
    }
    if deployment.kind == ModuleKind::Provider {
        for (export, item) in offered(engine, component) {
            if let Some(why) = not_callable(engine, &item) {
                return Err(format!(
                    "the provider exports `{export}`, which cannot be called across modules: {why}"
                ));
            }
        }
    }
    Ok(())
}

/// Where a module runs, as `wiring` shows it: `daemon` or `worker GROUP`.
fn process_of(deployment: &crate::manifest::DeploymentManifest) -> String {
    match deployment.isolation {
        Isolation::Main => "daemon".to_owned(),
        Isolation::Worker => format!("worker {}", deployment.group),
    }
}

impl Supervisor {
    /// The provider module each of `id`'s provider-served imports links
    /// to: one its `[imports]` grants, running, of a compatible version,
    /// whose functions fit.
    pub(super) fn links_for(
        &self,
        state: &State,
        id: &str,
        loaded: &Loaded,
    ) -> Result<BTreeMap<String, String>, Unlinked> {
        let mut links = BTreeMap::new();
        let running = self.inner.wiring.all();
        for import in &loaded.needs {
            let (interface, _) = split(import);
            let granted = loaded.manifests.deployment.imports.get(interface);
            let Some(granted) = granted else {
                return Err(Unlinked::Waiting(format!(
                    "`{import}` is not granted: add [imports] \"{interface}\" = \"PROVIDER\" to its deployment"
                )));
            };
            let mut refusals = Vec::new();
            let chosen = running.iter().find(|(provider, p)| {
                if *provider == id || (granted != ANY_PROVIDER && *provider != granted) {
                    return false;
                }
                let Some(export) = p.exports.iter().find(|e| serves(e, import)) else {
                    return false;
                };
                let Some(provider_loaded) = state.modules.get(*provider).and_then(|s| s.loaded.as_ref()) else {
                    return false;
                };
                match misfit(&loaded.program, import, &provider_loaded.program, export) {
                    Some(why) => {
                        refusals.push(format!("`{provider}` exports {export}, which does not fit: {why}"));
                        false
                    }
                    None => true,
                }
            });
            match chosen {
                Some((provider, _)) => {
                    links.insert(import.clone(), provider.clone());
                }
                None => {
                    if let Some(cycle) = self.cycle_through(state, id) {
                        return Err(Unlinked::Cycle(cycle));
                    }
                    let whom = if granted == ANY_PROVIDER {
                        "any provider".to_owned()
                    } else {
                        format!("`{granted}`")
                    };
                    let mut why = format!("no running provider of `{import}` ([imports] allows {whom})");
                    if !refusals.is_empty() {
                        why = format!("{why}; {}", refusals.join("; "));
                    }
                    return Err(Unlinked::Waiting(why));
                }
            }
        }
        Ok(links)
    }

    /// A cycle of imports through `id` among installed modules, named
    /// (`a → b → a`): each would wait for the next forever.
    fn cycle_through(&self, state: &State, id: &str) -> Option<String> {
        let edges = |from: &str| -> Vec<String> {
            let Some(loaded) = state.modules.get(from).and_then(|s| s.loaded.as_ref()) else {
                return Vec::new();
            };
            let mut to = Vec::new();
            for import in &loaded.needs {
                let granted = loaded.manifests.deployment.imports.get(split(import).0);
                for (other, slot) in &state.modules {
                    let Some(theirs) = slot.loaded.as_ref() else { continue };
                    let allowed = granted.is_some_and(|g| g == ANY_PROVIDER || g == other);
                    if other != from
                        && allowed
                        && theirs.manifests.deployment.kind == ModuleKind::Provider
                        && theirs.offers.iter().any(|e| serves(e, import))
                        && !to.contains(other)
                    {
                        to.push(other.clone());
                    }
                }
            }
            to
        };
        // Depth-first from `id`, looking for a way back to it.
        let mut stack = vec![vec![id.to_owned()]];
        let mut seen = std::collections::BTreeSet::new();
        while let Some(path) = stack.pop() {
            let last = path.last().cloned().unwrap_or_default();
            for next in edges(&last) {
                if next == id {
                    let mut names = path.clone();
                    names.push(next);
                    return Some(format!("import cycle: {}", names.join(" → ")));
                }
                if seen.insert(next.clone()) {
                    let mut longer = path.clone();
                    longer.push(next);
                    stack.push(longer);
                }
            }
        }
        None
    }

    /// `services` with the router of a consumer's calls attached.
    pub(super) fn with_router(
        &self,
        id: &str,
        loaded: &Loaded,
        links: BTreeMap<String, String>,
        mut services: HostServices,
    ) -> HostServices {
        if loaded.needs.is_empty() {
            return services;
        }
        services.calls = Some(Arc::new(Router {
            consumer: id.to_owned(),
            links,
            wiring: self.inner.wiring.clone(),
            timeout: loaded.manifests.deployment.calls.timeout,
            host: services.clone(),
        }));
        services
    }

    /// A provider's entrance for its start number `generation`, registered
    /// so consumers find it.
    pub(super) fn register_provider(&self, id: &str, loaded: &Loaded, generation: u64) -> Arc<ProviderHandle> {
        let deployment = &loaded.manifests.deployment;
        let handle = Arc::new(ProviderHandle::new(id, deployment.provider.instances));
        let process = process_of(deployment);
        self.inner.wiring.register(
            id,
            Provided {
                exports: loaded.offers.clone(),
                version: loaded.manifests.version.clone(),
                process,
                handle: handle.clone(),
                generation,
            },
        );
        handle
    }

    /// Starts every module waiting for a provider that may now be linked.
    pub(super) fn wake_waiting(&self, state: &mut State) {
        let waiting: Vec<String> = state
            .modules
            .iter()
            .filter(|(_, s)| {
                matches!(s.state, ModuleState::Waiting { .. })
                    && s.task.is_none()
                    && s.record.desired == DesiredState::Running
                    && s.loaded.is_some()
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in waiting {
            let still = state
                .modules
                .get(&id)
                .is_some_and(|s| matches!(s.state, ModuleState::Waiting { .. }) && s.task.is_none());
            if let Some(loaded) = state.modules.get(&id).and_then(|s| s.loaded.clone()).filter(|_| still) {
                self.launch(state, &id, loaded);
            }
        }
    }

    /// Provider `id` was stopped, removed or gave up: each consumer linked
    /// to it waits for a provider again, or stops, as its `[calls]
    /// when_provider_stops` says.
    pub(super) fn provider_gone(&self, state: &mut State, id: &str) {
        let consumers: Vec<(String, WhenProviderStops)> = state
            .modules
            .iter()
            .filter(|(_, s)| s.instance.as_ref().is_some_and(|i| i.links.values().any(|p| p == id)))
            .filter_map(|(cid, s)| {
                let how = s.loaded.as_ref()?.manifests.deployment.calls.when_provider_stops;
                Some((cid.clone(), how))
            })
            .collect();
        for (consumer, how) in consumers {
            let why = format!("its provider `{id}` stopped");
            self.halt(state, &consumer, &why);
            match how {
                WhenProviderStops::Wait => {
                    self.set_state(state, &consumer, ModuleState::Waiting { reason: why });
                }
                WhenProviderStops::Stop => {
                    if let Some(slot) = state.modules.get_mut(&consumer)
                        && let Err(e) = self.set_desired(slot, DesiredState::Stopped)
                    {
                        log::warn!("{consumer}: {}", e.message);
                    }
                }
            }
        }
        // A consumer waiting on another provider of the same interface may start now.
        self.wake_waiting(state);
    }
}

impl Supervisor {
    /// `arcella wiring`: providers, links and waiting modules, now.
    pub fn wiring(&self) -> crate::protocol::Wiring {
        use crate::protocol::{Wiring, WiringLink, WiringProvider};
        let state = self.lock();
        let mut report = Wiring::default();
        for (module, p) in self.inner.wiring.all() {
            report.providers.push(WiringProvider {
                module,
                version: p.version,
                exports: p.exports,
                process: p.process,
            });
        }
        for (id, slot) in &state.modules {
            if let ModuleState::Waiting { reason } = &slot.state {
                report.waiting.push((id.clone(), reason.clone()));
            }
            let (Some(instance), Some(loaded)) = (&slot.instance, &slot.loaded) else {
                continue;
            };
            let process = process_of(&loaded.manifests.deployment);
            for (import, provider) in &instance.links {
                report.links.push(WiringLink {
                    consumer: id.clone(),
                    import: import.clone(),
                    provider: provider.clone(),
                    process: process.clone(),
                });
            }
        }
        report
    }
}
