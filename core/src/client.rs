//! A blocking client of the management socket, for the CLI.

use crate::digest::{self, Sha256Digest};
use crate::protocol::frame::{self, FrameError, FrameReader, MAX_FRAME_LEN, UPLOAD_CHUNK_LEN};
use crate::protocol::handshake::{self, HandshakeError};
use crate::protocol::{
    ClientMessage, Event, HelloReply, RemoteError, Request, RequestId, Response, ServerMessage, Upload,
};
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// How long to wait for a response before giving up on the daemon.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(120);

/// Why a request did not get an answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "cannot reach the arcella daemon at {socket}: {source} (is it running? start it with `arcella daemon`, or name its socket with --socket or ARCELLA_SOCKET)"
    )]
    Connect {
        socket: String,
        #[source]
        source: std::io::Error,
    },
    #[error("handshake with the daemon failed: {0}")]
    Handshake(#[from] HandshakeError),
    #[error("talking to the daemon: {0}")]
    Io(#[from] std::io::Error),
    #[error("the daemon sent a bad frame: {0}")]
    Frame(#[from] FrameError),
    #[error("{0}")]
    Remote(#[from] RemoteError),
    #[error("the daemon closed the connection")]
    Closed,
}

/// One connection to the daemon.
#[derive(Debug)]
pub struct Client {
    stream: UnixStream,
    reader: FrameReader,
    next_id: RequestId,
    events: VecDeque<Event>,
    /// What the daemon said it is in the handshake.
    pub daemon: String,
}

impl Client {
    /// Connects and performs the handshake.
    pub fn connect(socket: &Path, peer: &str) -> Result<Self, ClientError> {
        let stream = UnixStream::connect(socket).map_err(|source| ClientError::Connect {
            socket: socket.display().to_string(),
            source,
        })?;
        stream.set_read_timeout(Some(RESPONSE_TIMEOUT))?;
        let mut client = Self {
            stream,
            reader: FrameReader::new(MAX_FRAME_LEN),
            next_id: 1,
            events: VecDeque::new(),
            daemon: String::new(),
        };
        client.send(&handshake::hello(peer))?;
        let reply: HelloReply = frame::decode(&client.read_frame()?)?;
        client.daemon = handshake::check_reply(&reply)?;
        Ok(client)
    }

    fn send<T: serde::Serialize>(&mut self, message: &T) -> Result<(), ClientError> {
        let bytes = frame::encode(message)?;
        self.stream.write_all(&bytes)?;
        Ok(())
    }

    fn read_frame(&mut self) -> Result<Vec<u8>, ClientError> {
        let mut buf = [0u8; 8192];
        loop {
            if let Some(frame) = self.reader.next_frame() {
                return Ok(frame);
            }
            let n = self.stream.read(&mut buf)?;
            if n == 0 {
                return Err(ClientError::Closed);
            }
            self.reader.push(&buf[..n])?;
        }
    }

    /// Sends a request and waits for its response; events that arrive
    /// meanwhile are kept for [`Client::next_event`].
    pub fn call(&mut self, request: Request) -> Result<Response, ClientError> {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        self.send(&ClientMessage { id, request })?;
        loop {
            match frame::decode::<ServerMessage>(&self.read_frame()?)? {
                ServerMessage::Response { id: got, result } if got == id => return Ok(result?),
                ServerMessage::Response { .. } => {}
                ServerMessage::Event(event) => self.events.push_back(event),
                ServerMessage::Error(error) => return Err(error.into()),
            }
        }
    }

    /// The next pushed event (after `Request::Follow`); blocks.
    pub fn next_event(&mut self) -> Result<Event, ClientError> {
        self.stream.set_read_timeout(None)?;
        loop {
            if let Some(event) = self.events.pop_front() {
                return Ok(event);
            }
            match frame::decode::<ServerMessage>(&self.read_frame()?)? {
                ServerMessage::Event(event) => return Ok(event),
                ServerMessage::Error(error) => return Err(error.into()),
                ServerMessage::Response { .. } => {}
            }
        }
    }

    /// Uploads a file in chunks; returns its sha256 for `InstallSpec`.
    pub fn upload(&mut self, bytes: &[u8]) -> Result<Sha256Digest, ClientError> {
        upload_with(bytes, |request| self.call(request))
    }
}

/// Uploads `bytes` through `call` in `Request::Upload` chunks (stopping
/// early when the daemon already has the file); returns its sha256.
pub fn upload_with<E>(bytes: &[u8], mut call: impl FnMut(Request) -> Result<Response, E>) -> Result<Sha256Digest, E> {
    let sha256 = digest::sha256(bytes);
    let total_len = bytes.len() as u64;
    for (i, chunk) in bytes.chunks(UPLOAD_CHUNK_LEN).enumerate() {
        let upload = Upload {
            sha256,
            total_len,
            offset: (i * UPLOAD_CHUNK_LEN) as u64,
            data: chunk.to_vec(),
        };
        if let Response::Uploaded { complete: true, .. } = call(Request::Upload(upload))? {
            break;
        }
    }
    Ok(sha256)
}
