//! A provider in a worker: the daemon takes its calls off the provider's
//! [`ProviderHandle`] (where consumers anywhere put them), sends each to
//! the worker as [`ToWorker::Call`] and hands back the
//! [`FromWorker::CallReply`] with the same number. A call whose answer
//! does not come by its deadline fails for its caller; a late answer is
//! dropped.
//!
//! [`FromWorker::CallReply`]: crate::protocol::worker::FromWorker::CallReply

use super::process::{Outgoing, Worker};
use crate::host::typed::value::{from_wire, to_wire};
use crate::host::typed::{CallError, CallRequest, ProviderHandle};
use crate::protocol::host_call::MAX_HOST_PAYLOAD;
use crate::protocol::worker::{InstanceId, ToWorker};
use std::sync::Arc;
use std::time::Instant;

/// Forwards `handle`'s calls to `instance` in `worker` until dropped.
pub(super) fn forward(
    executor: &Arc<smol::Executor<'static>>,
    worker: Arc<Worker>,
    instance: InstanceId,
    handle: Arc<ProviderHandle>,
) -> smol::Task<()> {
    let requests = handle.requests();
    let inner = executor.clone();
    executor.spawn(async move {
        while let Ok(request) = requests.recv().await {
            let provider = handle.provider.clone();
            inner.spawn(one(worker.clone(), instance, provider, request)).detach();
        }
    })
}

async fn one(worker: Arc<Worker>, instance: InstanceId, provider: String, request: CallRequest) {
    let CallRequest {
        export,
        function,
        args,
        deadline,
        reply,
    } = request;
    let bad = |why: String| CallError::BadValues {
        function: format!("{export}#{function}"),
        why,
    };
    let args = match to_wire(&args) {
        Ok(args) => args,
        Err(e) => {
            let _ = reply.try_send(Err(bad(e.to_string())));
            return;
        }
    };
    let timeout_ms = deadline.saturating_duration_since(Instant::now()).as_millis() as u64;
    let (answer_tx, answer) = async_channel::bounded(1);
    let call = {
        let mut table = worker.table();
        let call = table.next_call_out;
        table.next_call_out = table.next_call_out.wrapping_add(1);
        table.calls_out.insert(call, answer_tx);
        call
    };
    let message = ToWorker::Call {
        instance,
        call,
        export: export.clone(),
        function: function.clone(),
        args,
        timeout_ms,
    };
    let size = postcard::experimental::serialized_size(&message).unwrap_or(usize::MAX);
    let result = if size > MAX_HOST_PAYLOAD {
        Err(bad(format!(
            "the arguments take {size} bytes; a call between modules carries at most {MAX_HOST_PAYLOAD}"
        )))
    } else if worker.outbox.send(Outgoing { message, fd: None }).await.is_err() {
        Err(CallError::Stopped {
            provider: provider.clone(),
            function: format!("{export}#{function}"),
        })
    } else {
        let late = deadline + std::time::Duration::from_millis(200);
        smol::future::or(
            async {
                answer.recv().await.unwrap_or_else(|_| {
                    Err(CallError::Stopped {
                        provider: provider.clone(),
                        function: format!("{export}#{function}"),
                    })
                })
            },
            async {
                smol::Timer::at(late).await;
                Err(CallError::Timeout {
                    provider: provider.clone(),
                    function: format!("{export}#{function}"),
                    timeout: "its deadline".to_owned(),
                })
            },
        )
        .await
        .map(from_wire)
    };
    worker.table().calls_out.remove(&call);
    let _ = reply.try_send(result);
}
