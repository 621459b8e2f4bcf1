//! A worker's messaging backend: every publish goes to the daemon over
//! the host-call channel (`host/calls.rs`), where the grant is checked and
//! the bus lives. Sizes are checked here too, so a message that could not
//! fit the link gets the same clear error as in-process.

use super::backend::{Messaging, MsgFuture};
use crate::host::calls::HostCalls;
use crate::protocol::host_call::{HostReply, HostRequest};
use crate::protocol::messaging::{BusMessage, MsgError, MsgRequest};
use crate::protocol::worker::InstanceId;
use std::sync::Arc;

/// Forwards one instance's publishes.
#[derive(Debug)]
pub struct Proxy {
    pub calls: Arc<HostCalls>,
    pub instance: InstanceId,
}

impl Messaging for Proxy {
    fn publish(&self, message: BusMessage) -> MsgFuture<'_> {
        Box::pin(async move {
            if let Some(why) = message.too_large() {
                return Err(MsgError::Other(format!("publish on {:?}: {why}", message.topic)));
            }
            let request = HostRequest::Messaging(MsgRequest::Publish(message));
            match self.calls.call(self.instance, request).await {
                HostReply::Messaging(result) => result,
                HostReply::Refused(why) => Err(MsgError::Other(format!("the daemon refused the call: {why}"))),
                HostReply::KeyValue(_) | HostReply::Call(_) => Err(MsgError::Other(
                    "the daemon answered with another kind of reply".to_owned(),
                )),
            }
        })
    }
}
