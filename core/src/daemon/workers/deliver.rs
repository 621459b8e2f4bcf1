//! Messages for a handler in a worker: the instance's queue stays on the
//! daemon's bus (bounded, drop-oldest, counted there); this task takes one
//! message at a time, sends it as [`ToWorker::Deliver`] and waits for the
//! worker's [`FromWorker::Handled`](crate::protocol::worker::FromWorker::Handled)
//! before the next. At most one message per instance is ever on the link
//! or in the worker, so a slow or flooded handler costs the worker no
//! memory and the daemon only its bounded queue. The task ends with the
//! instance (it is dropped with it).

use super::process::{Outgoing, Worker};
use crate::host::messaging::backend::Inbox;
use crate::protocol::worker::{InstanceId, ToWorker};
use std::sync::Arc;

pub(super) async fn pump(
    worker: Arc<Worker>,
    instance: InstanceId,
    inbox: Arc<dyn Inbox>,
    handled: async_channel::Receiver<Result<(), String>>,
) {
    loop {
        let message = inbox.next().await;
        let out = Outgoing {
            message: ToWorker::Deliver { instance, message },
            fd: None,
        };
        if worker.outbox.send(out).await.is_err() {
            return;
        }
        match handled.recv().await {
            Ok(outcome) => inbox.handled(outcome).await,
            Err(_) => return,
        }
    }
}
