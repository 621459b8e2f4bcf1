//! The management socket: accepts connections, checks who is calling,
//! does the handshake, then serves requests until the peer goes away.
//!
//! Every connection gets a bounded outgoing queue drained by its own writer
//! task, so a slow reader cannot make the daemon buffer without limit, and
//! responses and pushed events never interleave mid-frame.

use super::config::Access;
use super::supervisor::Supervisor;
use crate::protocol::audit::Actor;
use crate::protocol::frame::{self, FrameError, FrameReader, MAX_FRAME_LEN};
use crate::protocol::{
    ClientMessage, ErrorKind, Hello, HelloReply, RemoteError, Request, Response, ServerMessage, handshake,
};
use crate::sys::user::{PeerCredentials, peer_credentials};
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::net::unix::{UnixListener, UnixStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Connections served at once (after their handshake); more are refused
/// with a reason.
pub const MAX_CONNECTIONS: usize = 64;
/// Of those, kept for root and the daemon's own user: peers allowed by
/// `[access]` alone cannot take them, so they cannot lock the operator out.
pub const KEPT_FOR_OPERATOR: usize = 4;
/// How long a new connection has to complete the handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Outgoing messages queued per connection.
const OUTGOING_QUEUE: usize = 64;

/// State shared by every connection.
#[derive(Debug)]
pub struct Server {
    pub supervisor: Supervisor,
    pub access: Access,
    pub daemon_uid: u32,
    pub executor: Arc<smol::Executor<'static>>,
    /// Connections past their handshake.
    served: AtomicUsize,
}

impl Server {
    pub fn new(supervisor: Supervisor, access: Access, executor: Arc<smol::Executor<'static>>) -> Arc<Self> {
        Arc::new(Self {
            supervisor,
            access,
            daemon_uid: crate::sys::user::effective_uid(),
            executor,
            served: AtomicUsize::new(0),
        })
    }

    /// Root and the daemon's own user: the operator.
    fn is_operator(&self, peer: &PeerCredentials) -> bool {
        peer.uid == 0 || peer.uid == self.daemon_uid
    }

    fn allows(&self, peer: &PeerCredentials) -> bool {
        self.may_change(peer)
            || self.access.read_only_uids.contains(&peer.uid)
            || self.access.read_only_gids.contains(&peer.gid)
    }

    /// Whether `peer` may operate and change, not only read.
    fn may_change(&self, peer: &PeerCredentials) -> bool {
        self.is_operator(peer)
            || self.access.allowed_uids.contains(&peer.uid)
            || self.access.allowed_gids.contains(&peer.gid)
    }

    /// A served slot for `peer`, or why there is none: past
    /// `MAX_CONNECTIONS − KEPT_FOR_OPERATOR` only the operator gets one.
    fn take_slot(&self, peer: &PeerCredentials) -> Result<Slot<'_>, String> {
        let slot = Slot(&self.served);
        let served = self.served.fetch_add(1, Ordering::Relaxed) + 1;
        let limit = if self.is_operator(peer) {
            MAX_CONNECTIONS
        } else {
            MAX_CONNECTIONS - KEPT_FOR_OPERATOR
        };
        if served > limit {
            return Err(format!(
                "the daemon already serves {} connections (at most {MAX_CONNECTIONS}, of which \
                 {KEPT_FOR_OPERATOR} are kept for root and uid {}); retry later",
                served - 1,
                self.daemon_uid
            ));
        }
        Ok(slot)
    }
}

/// Accepts connections forever.
pub async fn accept_loop(listener: UnixListener, server: Arc<Server>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let server_for_task = server.clone();
                server
                    .executor
                    .spawn(serve_connection(server_for_task, stream))
                    .detach();
            }
            Err(e) => {
                log::warn!("accepting a management connection failed: {e}");
                smol::Timer::after(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Counts a connection for as long as it lives.
struct Slot<'a>(&'a AtomicUsize);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn serve_connection(server: Arc<Server>, mut stream: UnixStream) {
    let peer = match peer_credentials(&stream) {
        Ok(peer) => peer,
        Err(e) => {
            log::warn!("cannot read the peer credentials of a management connection: {e}");
            return;
        }
    };
    // Read-only peers ([access] read_only_*) get reads alone.
    let may_change = server.may_change(&peer);
    let mut reader = FrameReader::new(MAX_FRAME_LEN);
    let hello = smol::future::or(async { Some(read_frame(&mut stream, &mut reader).await) }, async {
        smol::Timer::after(HANDSHAKE_TIMEOUT).await;
        None
    })
    .await;
    let refuse = |reason: String| HelloReply::Refused {
        daemon_version: crate::protocol::PROTOCOL_VERSION,
        reason,
    };
    let mut slot = None;
    let reply = match hello {
        None => {
            log::info!(
                "pid {} (uid {}) sent no handshake within {HANDSHAKE_TIMEOUT:?}; closing",
                peer.pid,
                peer.uid
            );
            return;
        }
        Some(Ok(Some(frame))) => match frame::decode::<Hello>(&frame) {
            Ok(hello) if !server.allows(&peer) => {
                log::warn!(
                    "refused management connection from uid {} (pid {}, {})",
                    peer.uid,
                    peer.pid,
                    hello.peer
                );
                refuse(format!(
                    "uid {} is not allowed to manage this daemon (allowed: root, uid {}, and [access] in its config)",
                    peer.uid, server.daemon_uid
                ))
            }
            Ok(hello) => match server.take_slot(&peer) {
                Ok(taken) => {
                    slot = Some(taken);
                    handshake::answer(&hello, &format!("arcella {}", env!("CARGO_PKG_VERSION")))
                }
                Err(reason) => {
                    log::warn!(
                        "refused management connection from uid {} (pid {}): {reason}",
                        peer.uid,
                        peer.pid
                    );
                    refuse(reason)
                }
            },
            Err(_) => refuse("not an Arcella management peer: the first frame is not a handshake".into()),
        },
        Some(Err(ReadError::Frame(e))) => refuse(format!("not an Arcella management peer: {e}")),
        Some(Ok(None)) | Some(Err(ReadError::Io(_))) => return,
    };
    let welcomed = matches!(reply, HelloReply::Welcome { .. });
    if write_message(&mut stream, &reply).await.is_err() || !welcomed {
        return;
    }
    let _slot = slot;
    let idle_timeout = server.access.idle_timeout;
    let (tx, rx) = async_channel::bounded::<ServerMessage>(OUTGOING_QUEUE);
    let writer = server.executor.spawn(write_loop(stream.clone(), rx));
    let mut follower: Option<smol::Task<()>> = None;
    loop {
        // Idle: no request within the timeout, unless following events.
        let following = follower.is_some();
        let next = smol::future::or(async { Some(read_frame(&mut stream, &mut reader).await) }, async {
            if following {
                smol::future::pending::<()>().await;
            }
            smol::Timer::after(idle_timeout).await;
            None
        })
        .await;
        let Some(next) = next else {
            log::info!(
                "pid {} (uid {}) sent no request for {}; closing its connection",
                peer.pid,
                peer.uid,
                crate::run::humanize(idle_timeout)
            );
            break;
        };
        let frame = match next {
            Ok(Some(frame)) => frame,
            Ok(None) => {
                if reader.buffered() > 0 {
                    log::info!(
                        "pid {} closed the connection in the middle of a frame ({} bytes)",
                        peer.pid,
                        reader.buffered()
                    );
                }
                break;
            }
            Err(ReadError::Frame(e)) => {
                let _ = tx
                    .send(ServerMessage::Error(RemoteError::new(
                        ErrorKind::BadRequest,
                        e.to_string(),
                    )))
                    .await;
                break;
            }
            Err(ReadError::Io(e)) => {
                log::debug!("management connection from pid {} ended: {e}", peer.pid);
                break;
            }
        };
        let message = match frame::decode::<ClientMessage>(&frame) {
            Ok(message) => message,
            Err(e) => {
                let error = RemoteError::new(ErrorKind::BadRequest, format!("could not decode the request: {e}"));
                // Answer the request itself when its id is readable, so a
                // pipelining client knows which one failed.
                let reply = match frame::peek_request_id(&frame) {
                    Some(id) => ServerMessage::Response { id, result: Err(error) },
                    None => ServerMessage::Error(error),
                };
                if tx.send(reply).await.is_err() {
                    break;
                }
                continue;
            }
        };
        let actor = Actor::Local {
            uid: peer.uid,
            pid: peer.pid.unsigned_abs(),
        };
        let result = if message.request.access() != crate::protocol::Access::Read && !may_change {
            let refused = Err(RemoteError::new(
                ErrorKind::PermissionDenied,
                format!(
                    "uid {} may only read on this daemon ([access] read_only_uids/read_only_gids); a {} request needs \
                     root, uid {}, or [access] allowed_uids/allowed_gids",
                    peer.uid,
                    message.request.access(),
                    server.daemon_uid
                ),
            ));
            server.supervisor.audit().note(
                actor,
                "refused",
                None,
                Err("permission denied: read-only peer"),
                &format!("a {} request", message.request.access()),
            );
            refused
        } else {
            handle(&server, &actor, message.request, &tx, &mut follower).await
        };
        if tx
            .send(ServerMessage::Response { id: message.id, result })
            .await
            .is_err()
        {
            break;
        }
    }
    drop(follower);
    drop(tx);
    writer.await;
}

/// Serves one request. File I/O, hashing, deserializing and compiling
/// (uploads, installs, updates) run on a blocking-pool thread, so they never
/// stall the modules running on the executor.
async fn handle(
    server: &Server,
    actor: &Actor,
    request: Request,
    tx: &async_channel::Sender<ServerMessage>,
    follower: &mut Option<smol::Task<()>>,
) -> Result<Response, RemoteError> {
    let sup = &server.supervisor;
    match request {
        Request::Follow { module } => {
            let events = sup.follow(module)?;
            let tx = tx.clone();
            *follower = Some(server.executor.spawn(async move {
                while let Ok(event) = events.recv().await {
                    if tx.send(ServerMessage::Event(event)).await.is_err() {
                        return;
                    }
                }
            }));
            Ok(Response::Following)
        }
        Request::Unfollow => {
            *follower = None;
            Ok(Response::Unfollowed)
        }
        // Answered from memory (or by a quick signal to a task): here.
        Request::Info
        | Request::Wiring
        | Request::List
        | Request::Status { .. }
        | Request::Inspect { .. }
        | Request::Logs { .. }
        | Request::Stop { .. } => super::remote::answer(sup, actor, request),
        // Launched here, so the guest's first output waits for no other
        // thread; the record's save (an fsync), and a start that waits for
        // a stopping instance to end, on the blocking pool.
        Request::Start { module } => {
            let begun = sup.begin_start(&module);
            let sup = sup.clone();
            let actor = actor.clone();
            crate::offload::offload(move || super::remote::finish_start(&sup, &actor, module, begun)).await
        }
        // Disk, hashing, loading, `Telemetry` (it waits for workers'
        // answers, supervisor/telemetry.rs), and `Restart` (it waits for
        // a stopping instance to end, up to the grace period; the grace's
        // timer runs on this executor): on the blocking pool.
        request => {
            let sup = sup.clone();
            let actor = actor.clone();
            crate::offload::offload(move || super::remote::answer(&sup, &actor, request)).await
        }
    }
}

enum ReadError {
    Frame(FrameError),
    Io(std::io::Error),
}

/// The next complete frame, `None` at end of stream.
async fn read_frame(stream: &mut UnixStream, reader: &mut FrameReader) -> Result<Option<Vec<u8>>, ReadError> {
    let mut buf = [0u8; 8192];
    loop {
        if let Some(frame) = reader.next_frame() {
            return Ok(Some(frame));
        }
        let n = stream.read(&mut buf).await.map_err(ReadError::Io)?;
        if n == 0 {
            return Ok(None);
        }
        reader.push(&buf[..n]).map_err(ReadError::Frame)?;
    }
}

async fn write_message<T: serde::Serialize>(stream: &mut UnixStream, message: &T) -> std::io::Result<()> {
    let bytes = frame::encode(message).map_err(std::io::Error::other)?;
    stream.write_all(&bytes).await
}

async fn write_loop(mut stream: UnixStream, outgoing: async_channel::Receiver<ServerMessage>) {
    while let Ok(mut message) = outgoing.recv().await {
        // A response too large for one frame becomes an error for that
        // request instead of a dead connection.
        if let (Err(e), ServerMessage::Response { id, .. }) = (frame::encode(&message), &message) {
            let error = RemoteError::new(
                ErrorKind::ResourceExhausted,
                format!("the answer does not fit one frame: {e}"),
            );
            message = ServerMessage::Response {
                id: *id,
                result: Err(error),
            };
        }
        if let Err(e) = write_message(&mut stream, &message).await {
            log::debug!("management connection closed while writing: {e}");
            return;
        }
    }
}
