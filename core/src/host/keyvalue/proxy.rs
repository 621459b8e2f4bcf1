//! A worker's key-value backend: every call goes to the daemon over the
//! host-call channel (`host/calls.rs`); the worker never opens a database.
//! Sizes are checked here too, so a call that could not fit a message gets
//! the same clear error as in-process instead of breaking the link.

use super::backend::{KeyValue, KvFuture};
use super::limits;
use crate::host::calls::HostCalls;
use crate::protocol::host_call::{HostReply, HostRequest, KvError, KvRequest};
use crate::protocol::worker::InstanceId;
use std::sync::Arc;

/// Forwards one instance's key-value calls.
#[derive(Debug)]
pub struct Proxy {
    pub calls: Arc<HostCalls>,
    pub instance: InstanceId,
}

impl KeyValue for Proxy {
    fn call(&self, request: KvRequest) -> KvFuture<'_> {
        Box::pin(async move {
            limits::check(&request)?;
            match self.calls.call(self.instance, HostRequest::KeyValue(request)).await {
                HostReply::KeyValue(result) => result,
                HostReply::Refused(why) => Err(KvError::Other(format!("the daemon refused the call: {why}"))),
                HostReply::Call(_) | HostReply::Messaging(_) => Err(KvError::Other(
                    "the daemon answered with another kind of reply".to_owned(),
                )),
            }
        })
    }
}
