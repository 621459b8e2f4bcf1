//! The host-call channel, worker side: a guest in a worker calls a host
//! interface whose state the daemon keeps; [`HostCalls::call`] sends
//! [`FromWorker::HostCall`] and waits for the [`ToWorker::HostReply`] with
//! the same number, which the worker's read loop hands to
//! [`HostCalls::deliver`]. One per worker, shared by its instances; at most
//! [`MAX_CALLS_IN_FLIGHT`] wait at once (the daemon enforces the same bound).
//! The daemon's side is [`HostServices::serve`].
//!
//! [`ToWorker::HostReply`]: crate::protocol::worker::ToWorker::HostReply

use super::HostServices;
use crate::protocol::host_call::{HostReply, HostRequest, KvError, KvReply, KvRequest, MAX_CALLS_IN_FLIGHT};
use crate::protocol::worker::{FromWorker, InstanceId};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, PoisonError};

type Waiting = HashMap<u32, async_channel::Sender<HostReply>>;

/// A worker's calls waiting for the daemon's replies.
pub struct HostCalls {
    next: AtomicU32,
    waiting: Mutex<Waiting>,
    slots: smol::lock::Semaphore,
    outbox: async_channel::Sender<FromWorker>,
}

impl std::fmt::Debug for HostCalls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostCalls").finish_non_exhaustive()
    }
}

/// Forgets a call whose caller went away (an instance cancelled mid-call).
struct Forget<'a>(&'a HostCalls, u32);

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.0.waiting().remove(&self.1);
    }
}

impl HostCalls {
    /// Calls go out through `outbox`, the worker's queue to the daemon.
    pub fn new(outbox: async_channel::Sender<FromWorker>) -> Self {
        Self {
            next: AtomicU32::new(0),
            waiting: Mutex::new(HashMap::new()),
            slots: smol::lock::Semaphore::new(MAX_CALLS_IN_FLIGHT),
            outbox,
        }
    }

    fn waiting(&self) -> std::sync::MutexGuard<'_, Waiting> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends `request` for `instance` and waits for the daemon's answer.
    pub async fn call(&self, instance: InstanceId, request: HostRequest) -> HostReply {
        let _slot = self.slots.acquire().await;
        let call = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = async_channel::bounded(1);
        self.waiting().insert(call, tx);
        let _forget = Forget(self, call);
        let message = FromWorker::HostCall {
            instance,
            call,
            request,
        };
        if self.outbox.send(message).await.is_err() {
            return HostReply::Refused("the link to the daemon is closed".to_owned());
        }
        rx.recv()
            .await
            .unwrap_or_else(|_| HostReply::Refused("the link to the daemon is closed".to_owned()))
    }

    /// A reply from the daemon; one for no waiting call is dropped.
    pub fn deliver(&self, call: u32, reply: HostReply) {
        if let Some(tx) = self.waiting().remove(&call) {
            let _ = tx.try_send(reply);
        } else {
            log::debug!("a host reply for call {call}, which no one waits for");
        }
    }

    /// Calls waiting now (tests).
    pub fn in_flight(&self) -> usize {
        self.waiting().len()
    }
}

impl HostServices {
    /// The daemon's side of the channel: serves one call a worker
    /// forwarded for the instance these services belong to.
    pub async fn serve(&self, request: HostRequest) -> HostReply {
        match request {
            HostRequest::KeyValue(request) => HostReply::KeyValue(self.kv_call(request).await),
            HostRequest::Call { import, function, args } => {
                HostReply::Call(self.typed_call(&import, &function, args).await)
            }
            HostRequest::Messaging(crate::protocol::messaging::MsgRequest::Publish(message)) => {
                HostReply::Messaging(self.publish(message).await)
            }
        }
    }

    /// One key-value call: by the backend, or refused when the instance
    /// was granted no store.
    pub async fn kv_call(&self, request: KvRequest) -> Result<KvReply, KvError> {
        match &self.keyvalue {
            Some(backend) => backend.call(request).await,
            None => super::keyvalue::backend::ungranted(&request, self.denials.as_ref()),
        }
    }
}

impl HostServices {
    /// One typed call from a consumer in a worker, routed by the
    /// instance's router here; refused (and reported) when the instance
    /// imports no provider's interface at all.
    pub async fn typed_call(
        &self,
        import: &str,
        function: &str,
        args: Vec<crate::host::typed::value::WireVal>,
    ) -> Result<Vec<crate::host::typed::value::WireVal>, crate::host::typed::CallError> {
        use crate::host::typed::{CallError, value};
        let Some(router) = &self.calls else {
            self.deny(
                super::Capability::Calls,
                format!("call {import}#{function}: the module imports no provider's interface"),
            );
            return Err(CallError::NotLinked {
                import: import.to_owned(),
            });
        };
        let answer = router.call(import, function, value::from_wire(args)).await?;
        value::to_wire(&answer).map_err(|e| CallError::BadValues {
            function: function.to_owned(),
            why: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_find_their_calls_and_cancelled_calls_are_forgotten() {
        let (outbox, sent) = async_channel::bounded(8);
        let calls = std::sync::Arc::new(HostCalls::new(outbox));
        smol::block_on(async {
            let request = || HostRequest::KeyValue(KvRequest::Open { bucket: "b".into() });
            let first = smol::spawn({
                let calls = calls.clone();
                async move { calls.call(1, request()).await }
            });
            let second = smol::spawn({
                let calls = calls.clone();
                async move { calls.call(2, request()).await }
            });
            let mut numbers = HashMap::new();
            for _ in 0..2 {
                let FromWorker::HostCall { instance, call, .. } = sent.recv().await.unwrap() else {
                    panic!("not a host call");
                };
                numbers.insert(instance, call);
            }
            // Answered out of order, each reaches its own caller.
            calls.deliver(numbers[&2], HostReply::Refused("two".into()));
            calls.deliver(numbers[&1], HostReply::Refused("one".into()));
            calls.deliver(999, HostReply::Refused("forged".into()));
            assert_eq!(first.await, HostReply::Refused("one".into()));
            assert_eq!(second.await, HostReply::Refused("two".into()));
            let abandoned = smol::spawn({
                let calls = calls.clone();
                async move { calls.call(3, request()).await }
            });
            let _ = sent.recv().await.unwrap();
            assert_eq!(calls.in_flight(), 1);
            abandoned.cancel().await;
            assert_eq!(calls.in_flight(), 0, "a cancelled call leaves nothing waiting");
        });
    }
}
