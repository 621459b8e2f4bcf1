//! Serving a component's `wasi:messaging/incoming-handler`: one handler
//! instance per subscribing module, fed serially from its queue (the
//! [`Inbox`]). The instance is kept between messages (a handler may keep
//! state, and pays instantiation once); after a trap or a timeout it is
//! discarded and the next message gets a fresh one. Each message runs
//! under its own budget: the fuel limit is refilled and the deadline
//! (`[limits] timeout` if set, else [`HANDLE_TIMEOUT`]) starts anew.

use super::{GuestFailure, Invocation, LogSink, Output, component_pre, component_store};
use crate::host::ComponentState;
use crate::host::messaging::backend::Inbox;
use crate::host::messaging::generated::{MessagingCore, MessagingCorePre};
use crate::host::messaging::{HANDLER, Message, describe};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::{Engine, Store, UpdateDeadline};

/// How long one message may take when the deployment sets no timeout.
pub const HANDLE_TIMEOUT: Duration = Duration::from_secs(30);

pub(super) async fn serve(
    engine: &Engine,
    component: &super::PreparedComponent,
    command: &Invocation<'_>,
    sinks: Option<(LogSink, LogSink)>,
    inbox: Arc<dyn Inbox>,
) -> Result<i32, GuestFailure> {
    let pre = component_pre(component, command)?;
    let pre = MessagingCorePre::new(pre).map_err(|e| {
        GuestFailure::NotACommand(format!(
            "[capabilities.messaging] subscribe delivers messages to {HANDLER}, but the component does not \
             export it: {e:#}"
        ))
    })?;
    let budget = command.limits.timeout.unwrap_or(HANDLE_TIMEOUT);
    let mut current: Option<(Store<ComponentState>, MessagingCore)> = None;
    loop {
        let message = inbox.next().await;
        let topic = message.topic.clone();
        let deadline = Instant::now() + budget;
        let (mut store, handler) = match current.take() {
            Some(kept) => kept,
            None => {
                let mut store = component_store(engine, command, sinks.clone(), Some(deadline))?;
                let handler = pre.instantiate_async(&mut store).await?;
                (store, handler)
            }
        };
        rearm(&mut store, command, deadline)?;
        let resource = store
            .data_mut()
            .table
            .push(Message::received(message))
            .map_err(|e| GuestFailure::Wasmtime(e.into()))?;
        let call = async {
            Some(
                handler
                    .wasi_messaging_incoming_handler()
                    .call_handle(&mut store, resource)
                    .await,
            )
        };
        let timer = async {
            tokio::time::sleep_until(deadline.into()).await;
            None
        };
        let outcome = match smol::future::or(call, timer).await {
            Some(Ok(Ok(()))) => {
                current = Some((store, handler));
                Ok(())
            }
            Some(Ok(Err(error))) => {
                current = Some((store, handler));
                Err(format!("the handler returned an error: {}", describe(&error)))
            }
            Some(Err(trap)) => Err(GuestFailure::Wasmtime(trap).explain(command).to_string()),
            None => Err(format!("the handler ran longer than {}", super::humanize(budget))),
        };
        if let Err(why) = &outcome {
            note(command, &format!("message on {topic:?}: {why}"));
        }
        inbox.handled(outcome).await;
    }
}

/// A new message's budget: its fuel and deadline.
fn rearm(store: &mut Store<ComponentState>, command: &Invocation<'_>, deadline: Instant) -> Result<(), GuestFailure> {
    if store.get_fuel().is_ok() {
        store.set_fuel(command.limits.fuel.unwrap_or(u64::MAX))?;
    }
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        if Instant::now() >= deadline {
            Ok(UpdateDeadline::Interrupt)
        } else {
            Ok(UpdateDeadline::Yield(1))
        }
    });
    Ok(())
}

fn note(command: &Invocation<'_>, text: &str) {
    match command.output {
        Output::Capture(book) => book.note(text),
        Output::Inherit => eprintln!("{}: {text}", command.name),
    }
}
