//! Who provides what, right now: the running provider modules, each with
//! the interfaces it exports and the [`ProviderHandle`] its calls go
//! through, and the [`Router`] each consumer instance calls through.
//!
//! A consumer is linked to a provider *module* (chosen at its start, see
//! supervisor/wiring.rs), not to one instance of it: each call looks the
//! module up again, so a call made while the provider is being updated or
//! restarted waits (within the consumer's `[calls] timeout`) and then goes
//! to whichever version runs.

use crate::host::typed::version::serves;
use crate::host::typed::{CallError, CallFuture, Calls, ProviderHandle};
use crate::host::{Capability, HostServices};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use wasmtime::component::Val;

/// How often a call waiting for its provider to come back looks again.
const LOOK_AGAIN: Duration = Duration::from_millis(10);

/// One running provider.
#[derive(Debug, Clone)]
pub struct Provided {
    /// The interfaces it exports, as `package:name/interface@version`.
    pub exports: Vec<String>,
    pub version: String,
    /// `daemon` or `worker GROUP`.
    pub process: String,
    pub handle: Arc<ProviderHandle>,
    /// Which start of the module registered it (a newer one replaces it).
    pub generation: u64,
}

/// The running providers, by module id.
#[derive(Debug, Default)]
pub struct Wiring {
    providers: Mutex<BTreeMap<String, Provided>>,
}

impl Wiring {
    fn providers(&self) -> MutexGuard<'_, BTreeMap<String, Provided>> {
        self.providers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `module` provides through `provided` from now on, in place of an
    /// earlier start of it (which finishes the calls it has, during a
    /// swap, and closes its own handle when it ends).
    pub fn register(&self, module: &str, provided: Provided) {
        self.providers().insert(module.to_owned(), provided);
    }

    /// `module`'s start number `generation` ended: its handle closes, and
    /// it provides nothing until it starts again.
    pub fn unregister(&self, module: &str, generation: u64) -> bool {
        let mut providers = self.providers();
        match providers.get(module) {
            Some(p) if p.generation == generation => {
                p.handle.close();
                providers.remove(module);
                true
            }
            _ => false,
        }
    }

    /// The running provider `module`, if it is one.
    pub fn get(&self, module: &str) -> Option<Provided> {
        self.providers().get(module).cloned()
    }

    /// Every running provider.
    pub fn all(&self) -> BTreeMap<String, Provided> {
        self.providers().clone()
    }
}

/// One consumer instance's calls: each import it may call, the provider
/// module it is linked to.
#[derive(Debug)]
pub struct Router {
    pub consumer: String,
    pub links: BTreeMap<String, String>,
    pub wiring: Arc<Wiring>,
    pub timeout: Duration,
    /// Where a call to an import that is not linked is reported.
    pub host: HostServices,
}

impl Calls for Router {
    fn call<'a>(&'a self, import: &'a str, function: &'a str, args: Vec<Val>) -> CallFuture<'a> {
        Box::pin(async move {
            let Some(provider) = self.links.get(import) else {
                self.host.deny(
                    Capability::Calls,
                    format!("call {import}#{function}: not linked ([imports] grants no provider of it)"),
                );
                return Err(CallError::NotLinked {
                    import: import.to_owned(),
                });
            };
            let timeout = crate::run::humanize(self.timeout);
            let deadline = Instant::now() + self.timeout;
            loop {
                let why = match self.wiring.get(provider) {
                    Some(p) if !p.handle.is_closed() => match p.exports.iter().find(|e| serves(e, import)) {
                        Some(export) => {
                            // Whoever gave up (the provider at the deadline, a
                            // worker, this side), the caller's setting is what it hit.
                            match p.handle.call(export, function, args.clone(), deadline, &timeout).await {
                                // No code of it ran: pass it on to the version
                                // that runs next (an update's swap, a rollback).
                                Err(CallError::Unserved { .. }) => {
                                    format!("`{provider}` stopped before it took the call")
                                }
                                // Whoever gave up (the provider at the deadline, a
                                // worker, this side), the caller's setting is what it hit.
                                Err(CallError::Timeout { provider, function, .. }) => {
                                    return Err(CallError::Timeout {
                                        provider,
                                        function,
                                        timeout: timeout.clone(),
                                    });
                                }
                                answer => return answer,
                            }
                        }
                        None => format!(
                            "`{provider}` runs version {} now, which no longer provides a compatible version",
                            p.version
                        ),
                    },
                    _ => format!("`{provider}` is not running"),
                };
                if Instant::now() + LOOK_AGAIN >= deadline {
                    return Err(CallError::NoProvider {
                        import: import.to_owned(),
                        timeout,
                        why,
                    });
                }
                smol::Timer::after(LOOK_AGAIN).await;
            }
        })
    }
}
