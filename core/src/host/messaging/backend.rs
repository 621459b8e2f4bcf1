//! Who serves an instance's publishes: [`Served`] in the daemon (the bus,
//! the module's grant, its denials), or the worker's proxy (`proxy.rs`),
//! which forwards them to the daemon. The guest-facing code (`mod.rs`)
//! sees only the [`Messaging`] trait. Where a handler's messages come
//! from is the [`Inbox`].

use super::bus::{Bus, Counters, Origin, Subscription};
use super::topic::{self, TopicError};
use crate::host::{Capability, Denial, DenialSink};
use crate::protocol::messaging::{BusMessage, MsgError};
use crate::protocol::worker::{FromWorker, InstanceId};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// A publish in progress.
pub type MsgFuture<'a> = Pin<Box<dyn Future<Output = Result<(), MsgError>> + Send + 'a>>;

/// Serves `producer.send` for one instance.
pub trait Messaging: Send + Sync {
    fn publish(&self, message: BusMessage) -> MsgFuture<'_>;
}

/// What `[capabilities.messaging]` grants a module (filters checked at install).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessagingGrant {
    pub publish: Vec<String>,
    pub subscribe: Vec<String>,
    pub queue: usize,
}

/// The daemon's side: every publish is checked here, also the ones a
/// worker forwards (the worker is not trusted to have checked).
pub struct Served {
    pub bus: Arc<Bus>,
    pub module: String,
    pub publish: Vec<String>,
    pub counters: Arc<Counters>,
    pub denials: Option<DenialSink>,
}

impl std::fmt::Debug for Served {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Served")
            .field("module", &self.module)
            .field("publish", &self.publish)
            .finish_non_exhaustive()
    }
}

impl Served {
    fn deny(&self, detail: String) -> MsgError {
        self.counters.denied();
        if let Some(sink) = &self.denials {
            sink(Denial {
                capability: Capability::Messaging,
                detail: detail.clone(),
            });
        }
        MsgError::PermissionDenied(detail)
    }

    /// The checks and the publish, without the future.
    pub fn publish_now(&self, message: &BusMessage) -> Result<usize, MsgError> {
        let shown = shown(&message.topic);
        match topic::check_topic(&message.topic) {
            Ok(()) => {}
            Err(e @ TopicError::Wildcard(_)) => return Err(self.deny(format!("publish on {shown}: the topic {e}"))),
            Err(e) => {
                self.counters.denied();
                return Err(MsgError::Other(format!("publish on {shown}: the topic {e}")));
            }
        }
        if let Some(why) = message.too_large() {
            self.counters.denied();
            return Err(MsgError::Other(format!("publish on {shown}: {why}")));
        }
        if !topic::any_matches(&self.publish, &message.topic) {
            return Err(self.deny(format!(
                "publish on {shown}: no filter in [capabilities.messaging] publish matches it"
            )));
        }
        self.counters.published();
        Ok(self.bus.publish(&Origin::Module(self.module.clone()), message))
    }
}

impl Messaging for Served {
    fn publish(&self, message: BusMessage) -> MsgFuture<'_> {
        Box::pin(async move { self.publish_now(&message).map(drop) })
    }
}

/// A topic as logs show it: quoted, cut to 300 bytes.
fn shown(topic: &str) -> String {
    format!("{:?}", &topic[..topic.floor_char_boundary(300)])
}

/// The answer for an instance granted no publishing at all.
pub fn ungranted(message: &BusMessage, denials: Option<&DenialSink>) -> Result<(), MsgError> {
    let detail = format!(
        "publish on {}: the module has no [capabilities.messaging] publish",
        shown(&message.topic)
    );
    if let Some(sink) = denials {
        sink(Denial {
            capability: Capability::Messaging,
            detail: detail.clone(),
        });
    }
    Err(MsgError::PermissionDenied(detail))
}

/// A message taken for the handler.
pub type NextFuture<'a> = Pin<Box<dyn Future<Output = BusMessage> + Send + 'a>>;
/// A finish being reported.
pub type DoneFuture<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// Where a subscribing instance's handler gets its messages, one at a
/// time: the module's queue on the bus (in-process), or what the daemon
/// delivers over the link (in a worker).
pub trait Inbox: Send + Sync {
    /// The next message, waiting for one.
    fn next(&self) -> NextFuture<'_>;
    /// The handler finished the last message; `Err` says how it failed.
    fn handled(&self, outcome: Result<(), String>) -> DoneFuture<'_>;
}

impl Inbox for Subscription {
    fn next(&self) -> NextFuture<'_> {
        Box::pin(Subscription::next(self))
    }

    fn handled(&self, outcome: Result<(), String>) -> DoneFuture<'_> {
        Subscription::handled(self, &outcome);
        Box::pin(std::future::ready(()))
    }
}

/// A worker's inbox: messages the daemon delivered; each finish is
/// reported back (the daemon then sends the next).
#[derive(Debug)]
pub struct Relayed {
    pub messages: async_channel::Receiver<BusMessage>,
    pub outbox: async_channel::Sender<FromWorker>,
    pub instance: InstanceId,
}

impl Inbox for Relayed {
    fn next(&self) -> NextFuture<'_> {
        Box::pin(async move {
            match self.messages.recv().await {
                Ok(message) => message,
                // The instance is going away; its task is dropped soon.
                Err(_) => std::future::pending().await,
            }
        })
    }

    fn handled(&self, outcome: Result<(), String>) -> DoneFuture<'_> {
        let instance = self.instance;
        Box::pin(async move {
            // Never lost to a full outbox: the daemon waits for it.
            let _ = self.outbox.send(FromWorker::Handled { instance, outcome }).await;
        })
    }
}
