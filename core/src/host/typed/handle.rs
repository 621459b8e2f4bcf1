//! Where a provider's calls arrive: a bounded queue between callers (the
//! daemon's router, or a worker's read loop) and the provider's own run
//! (`run::provider`), which takes requests off it, one per instance at a
//! time. The handle outlives nothing: closing it (the provider stopped)
//! makes every queued and future call fail at once, so callers move on
//! (to wait for the next version, or to their timeout).

use super::CallError;
use std::time::Instant;
use wasmtime::component::Val;

/// Calls that may wait for an instance of one provider at once; the next
/// caller waits for room (bounded by its own deadline).
pub const QUEUE: usize = 64;

/// One call on its way to a provider.
#[derive(Debug)]
pub struct CallRequest {
    /// The provider's export (`acme:thermo/sensor@1.3.0`).
    pub export: String,
    pub function: String,
    pub args: Vec<Val>,
    /// When the caller stops waiting; the provider's instance is
    /// interrupted then too (and replaced).
    pub deadline: Instant,
    pub reply: async_channel::Sender<Result<Vec<Val>, CallError>>,
}

/// The entrance to one running provider instance pool.
#[derive(Debug)]
pub struct ProviderHandle {
    /// The provider module's id, for messages.
    pub provider: String,
    /// Calls served at once (`[provider] instances`).
    pub instances: u16,
    tx: async_channel::Sender<CallRequest>,
    rx: async_channel::Receiver<CallRequest>,
}

impl ProviderHandle {
    pub fn new(provider: &str, instances: u16) -> Self {
        let (tx, rx) = async_channel::bounded(QUEUE);
        Self {
            provider: provider.to_owned(),
            instances: instances.max(1),
            tx,
            rx,
        }
    }

    /// Where the provider's run takes its requests from.
    pub fn requests(&self) -> async_channel::Receiver<CallRequest> {
        self.rx.clone()
    }

    /// Fails every queued and future call (the provider stopped); the
    /// queued ones as [`CallError::Unserved`], as none of them ran.
    pub fn close(&self) {
        self.tx.close();
        while let Ok(request) = self.rx.try_recv() {
            let _ = request.reply.try_send(Err(CallError::Unserved {
                provider: self.provider.clone(),
                function: request.function,
            }));
        }
    }

    /// Whether [`Self::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Calls `function` of `export` and waits for the answer until
    /// `deadline`; `timeout` is the caller's setting, for messages.
    pub async fn call(
        &self,
        export: &str,
        function: &str,
        args: Vec<Val>,
        deadline: Instant,
        timeout: &str,
    ) -> Result<Vec<Val>, CallError> {
        let late = || CallError::Timeout {
            provider: self.provider.clone(),
            function: function.to_owned(),
            timeout: timeout.to_owned(),
        };
        let stopped = || CallError::Stopped {
            provider: self.provider.clone(),
            function: function.to_owned(),
        };
        let (reply, answer) = async_channel::bounded(1);
        let request = CallRequest {
            export: export.to_owned(),
            function: function.to_owned(),
            args,
            deadline,
            reply,
        };
        let sent = smol::future::or(async { Some(self.tx.send(request).await) }, async {
            smol::Timer::at(deadline).await;
            None
        })
        .await;
        match sent {
            None => return Err(late()),
            Some(Err(_)) => return Err(stopped()),
            Some(Ok(())) => {}
        }
        // The provider interrupts the call at the deadline itself; the
        // grace covers the interrupt's way back.
        let grace = deadline + std::time::Duration::from_millis(250);
        smol::future::or(
            async { answer.recv().await.unwrap_or_else(|_| Err(stopped())) },
            async {
                smol::Timer::at(grace).await;
                Err(late())
            },
        )
        .await
    }
}

/// Closes its handle when dropped: held by the task running a provider,
/// so its callers hear at once that it is gone, however it ended.
#[derive(Debug)]
pub struct CloseOnDrop(pub std::sync::Arc<ProviderHandle>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A call still queued when its provider goes (a new version that
    /// never came up, a stop) is `Unserved`, which the router passes on to
    /// the next version; a call being served is `Stopped`.
    #[test]
    fn queued_calls_are_unserved_and_taken_ones_stopped_when_the_handle_closes() {
        let handle = ProviderHandle::new("thermo", 1);
        let deadline = Instant::now() + Duration::from_secs(5);
        let queued = smol::block_on(async {
            let call = handle.call("acme:thermo/sensor@1.2.0", "read", vec![], deadline, "5s");
            let close = async {
                smol::Timer::after(Duration::from_millis(20)).await;
                handle.close();
                std::future::pending::<Result<Vec<Val>, CallError>>().await
            };
            smol::future::or(call, close).await
        });
        assert!(matches!(queued, Err(CallError::Unserved { .. })), "{queued:?}");

        let handle = ProviderHandle::new("thermo", 1);
        let requests = handle.requests();
        let taken = smol::block_on(async {
            let call = handle.call("acme:thermo/sensor@1.2.0", "read", vec![], deadline, "5s");
            let serve = async {
                // The provider takes the call, then goes without answering.
                let request = requests.recv().await.unwrap();
                handle.close();
                drop(request);
                std::future::pending::<Result<Vec<Val>, CallError>>().await
            };
            smol::future::or(call, serve).await
        });
        assert!(matches!(taken, Err(CallError::Stopped { .. })), "{taken:?}");
    }
}
