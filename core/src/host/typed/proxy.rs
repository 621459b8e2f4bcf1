//! A worker's consumer side: every call goes to the daemon over the
//! host-call channel (`host/calls.rs`), which routes it to the provider
//! wherever that runs. Values that cannot fit one message are refused
//! here with the limit named, before anything is sent.

use super::value::{from_wire, to_wire};
use super::{CallError, CallFuture, Calls};
use crate::host::calls::HostCalls;
use crate::protocol::host_call::{HostReply, HostRequest, MAX_HOST_PAYLOAD};
use crate::protocol::worker::InstanceId;
use std::sync::Arc;
use wasmtime::component::Val;

/// Forwards one instance's calls to providers.
#[derive(Debug)]
pub struct CallProxy {
    pub calls: Arc<HostCalls>,
    pub instance: InstanceId,
}

impl Calls for CallProxy {
    fn call<'a>(&'a self, import: &'a str, function: &'a str, args: Vec<Val>) -> CallFuture<'a> {
        Box::pin(async move {
            let args = to_wire(&args).map_err(|e| CallError::BadValues {
                function: function.to_owned(),
                why: e.to_string(),
            })?;
            let request = HostRequest::Call {
                import: import.to_owned(),
                function: function.to_owned(),
                args,
            };
            let size = postcard::experimental::serialized_size(&request).unwrap_or(usize::MAX);
            if size > MAX_HOST_PAYLOAD {
                return Err(CallError::BadValues {
                    function: function.to_owned(),
                    why: format!(
                        "the arguments take {size} bytes; a call between modules carries at most {MAX_HOST_PAYLOAD}"
                    ),
                });
            }
            match self.calls.call(self.instance, request).await {
                HostReply::Call(result) => result.map(from_wire),
                HostReply::Refused(why) => Err(CallError::Refused(why)),
                other => Err(CallError::Refused(format!("an answer of the wrong kind: {other:?}"))),
            }
        })
    }
}
