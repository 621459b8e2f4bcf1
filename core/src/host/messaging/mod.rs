//! `wasi:messaging@0.2.0-draft` (types, producer; the
//! `incoming-handler` export), from WebAssembly/wasi-messaging at
//! f027346, vendored in `wit/deps/messaging/`: publish/subscribe between
//! the modules of a device (docs/messaging.md). The bus lives in the
//! daemon (`bus.rs`); a guest's `producer.send` goes to it directly
//! in-process ([`backend::Served`]) or over the host-call channel from a
//! worker ([`proxy::Proxy`]); the grant is checked in the daemon either
//! way. Topics use MQTT's syntax (`topic.rs`). `request-reply` is not
//! provided.
//!
//! A `client` is a handle with no state of its own: `connect(name)`
//! accepts any name (there is one bus per device) and the grant, not the
//! client, says what a module may do.

pub mod backend;
pub mod bus;
pub mod proxy;
pub mod topic;

use super::ComponentState;
use crate::protocol::messaging::{BusMessage, MAX_DATA, MAX_METADATA_PAIRS, MsgError};
use wasmtime::component::{HasSelf, Linker, Resource};

pub(crate) mod generated {
    wasmtime::component::bindgen!({
        path: "../wit/deps/messaging",
        world: "wasi:messaging/messaging-core",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "wasi:messaging/types.client": super::Client,
            "wasi:messaging/types.message": super::Message,
        },
    });
}

use generated::wasi::messaging::{producer, types};

/// The export a subscribing component's messages are delivered to.
pub const HANDLER: &str = "wasi:messaging/incoming-handler@0.2.0-draft";

/// A guest's connection: no state (one bus per device).
#[derive(Debug)]
pub struct Client;

/// A message being built by the guest, or delivered to it. Data beyond
/// [`MAX_DATA`] (and metadata beyond its bound) is not kept: `oversize`
/// remembers it, and sending such a message is refused with the sizes.
#[derive(Debug, Default)]
pub struct Message {
    topic: Option<String>,
    data: Vec<u8>,
    data_len: usize,
    content_type: Option<String>,
    metadata: Vec<(String, String)>,
    metadata_overflow: bool,
}

impl Message {
    /// A message the bus delivers to a handler.
    pub fn received(message: BusMessage) -> Self {
        Self {
            topic: Some(message.topic),
            data_len: message.data.len(),
            data: message.data,
            content_type: message.content_type,
            metadata: message.metadata,
            metadata_overflow: false,
        }
    }

    fn set_data(&mut self, mut data: Vec<u8>) {
        self.data_len = data.len();
        data.truncate(MAX_DATA);
        self.data = data;
    }

    fn add(&mut self, key: String, value: String) {
        self.metadata.retain(|(k, _)| *k != key);
        if self.metadata.len() >= MAX_METADATA_PAIRS {
            self.metadata_overflow = true;
            return;
        }
        self.metadata.push((key, value));
    }

    /// The message to publish on `topic`, or why it cannot travel.
    fn to_bus(&self, topic: String) -> Result<BusMessage, MsgError> {
        if self.data_len > MAX_DATA {
            return Err(MsgError::Other(format!(
                "publish on {topic:?}: the message's data is {} bytes; at most {MAX_DATA} travel on the bus",
                self.data_len
            )));
        }
        if self.metadata_overflow {
            return Err(MsgError::Other(format!(
                "publish on {topic:?}: more than {MAX_METADATA_PAIRS} metadata pairs"
            )));
        }
        Ok(BusMessage {
            topic,
            data: self.data.clone(),
            content_type: self.content_type.clone(),
            metadata: self.metadata.clone(),
        })
    }
}

/// Adds `wasi:messaging/{types,producer}@0.2.0-draft`.
pub fn link(linker: &mut Linker<ComponentState>) -> wasmtime::Result<()> {
    types::add_to_linker::<_, HasSelf<ComponentState>>(linker, |s| s)?;
    producer::add_to_linker::<_, HasSelf<ComponentState>>(linker, |s| s)?;
    Ok(())
}

fn to_wit(e: MsgError) -> types::Error {
    match e {
        MsgError::PermissionDenied(why) => types::Error::PermissionDenied(why),
        MsgError::Other(why) => types::Error::Other(why),
    }
}

/// A guest's error as a sentence for its log: the text it gave, after
/// what kind of error it is (`other` needs no name).
pub fn describe(error: &types::Error) -> String {
    match error {
        types::Error::Timeout => "timeout".to_owned(),
        types::Error::Connection(why) => format!("connection: {why}"),
        types::Error::PermissionDenied(why) => format!("permission denied: {why}"),
        types::Error::Other(why) => why.clone(),
    }
}

type Answer<T> = wasmtime::Result<Result<T, types::Error>>;

impl types::Host for ComponentState {}

impl types::HostClient for ComponentState {
    async fn connect(&mut self, _name: String) -> Answer<Resource<Client>> {
        Ok(Ok(self.table.push(Client)?))
    }

    async fn disconnect(&mut self, _client: Resource<Client>) -> Answer<()> {
        Ok(Ok(()))
    }

    async fn drop(&mut self, client: Resource<Client>) -> wasmtime::Result<()> {
        self.table.delete(client)?;
        Ok(())
    }
}

impl types::HostMessage for ComponentState {
    async fn new(&mut self, data: Vec<u8>) -> wasmtime::Result<Resource<Message>> {
        let mut message = Message::default();
        message.set_data(data);
        Ok(self.table.push(message)?)
    }

    async fn topic(&mut self, message: Resource<Message>) -> wasmtime::Result<Option<String>> {
        Ok(self.table.get(&message)?.topic.clone())
    }

    async fn content_type(&mut self, message: Resource<Message>) -> wasmtime::Result<Option<String>> {
        Ok(self.table.get(&message)?.content_type.clone())
    }

    async fn set_content_type(&mut self, message: Resource<Message>, content_type: String) -> wasmtime::Result<()> {
        let mut content_type = content_type;
        content_type.truncate(content_type.floor_char_boundary(crate::protocol::messaging::MAX_CONTENT_TYPE));
        self.table.get_mut(&message)?.content_type = Some(content_type);
        Ok(())
    }

    async fn data(&mut self, message: Resource<Message>) -> wasmtime::Result<Vec<u8>> {
        Ok(self.table.get(&message)?.data.clone())
    }

    async fn set_data(&mut self, message: Resource<Message>, data: Vec<u8>) -> wasmtime::Result<()> {
        self.table.get_mut(&message)?.set_data(data);
        Ok(())
    }

    async fn metadata(&mut self, message: Resource<Message>) -> wasmtime::Result<Option<types::Metadata>> {
        let metadata = &self.table.get(&message)?.metadata;
        Ok((!metadata.is_empty()).then(|| metadata.clone()))
    }

    async fn add_metadata(&mut self, message: Resource<Message>, key: String, value: String) -> wasmtime::Result<()> {
        self.table.get_mut(&message)?.add(key, value);
        Ok(())
    }

    async fn set_metadata(&mut self, message: Resource<Message>, meta: types::Metadata) -> wasmtime::Result<()> {
        let message = self.table.get_mut(&message)?;
        message.metadata.clear();
        message.metadata_overflow = false;
        for (key, value) in meta {
            message.add(key, value);
        }
        Ok(())
    }

    async fn remove_metadata(&mut self, message: Resource<Message>, key: String) -> wasmtime::Result<()> {
        self.table.get_mut(&message)?.metadata.retain(|(k, _)| *k != key);
        Ok(())
    }

    async fn drop(&mut self, message: Resource<Message>) -> wasmtime::Result<()> {
        self.table.delete(message)?;
        Ok(())
    }
}

impl producer::Host for ComponentState {
    async fn send(&mut self, _client: Resource<Client>, topic: String, message: Resource<Message>) -> Answer<()> {
        let message = self.table.delete(message)?;
        let message = match message.to_bus(topic) {
            Ok(message) => message,
            Err(e) => return Ok(Err(to_wit(e))),
        };
        // On a clone of the services: the state is not `Sync`.
        let services = self.services.clone();
        Ok(services.publish(message).await.map_err(to_wit))
    }
}

impl super::HostServices {
    /// One publish: by the backend, or refused when the instance was
    /// granted no publishing.
    pub async fn publish(&self, message: BusMessage) -> Result<(), MsgError> {
        match &self.messaging {
            Some(backend) => backend.publish(message).await,
            None => backend::ungranted(&message, self.denials.as_ref()),
        }
    }
}
