//! `SOCK_SEQPACKET` Unix socket pairs: the daemon ↔ worker link. Each send
//! is one message (no framing needed) and may carry file descriptors
//! (SCM_RIGHTS), which is how a worker receives the code files it maps.

use nix::sys::socket::{
    AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, Shutdown, SockFlag, SockType, recvmsg, sendmsg,
    shutdown, socketpair,
};
use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// One end of a seqpacket socket pair.
#[derive(Debug)]
pub struct SeqPacket(OwnedFd);

impl SeqPacket {
    /// A connected pair; both ends close-on-exec (the daemon hands the
    /// worker its end explicitly, as fd 3).
    pub fn pair() -> io::Result<(Self, Self)> {
        let (a, b) = socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)
            .map_err(io::Error::from)?;
        Ok((Self(a), Self(b)))
    }

    /// Adopts an inherited descriptor.
    ///
    /// # Safety
    /// `fd` must be an open seqpacket socket that nothing else owns.
    pub unsafe fn from_raw_fd(fd: RawFd) -> Self {
        // SAFETY: the caller promises `fd` is open and unowned.
        Self(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    /// Sends one message, with at most one descriptor attached.
    pub fn send(&self, message: &[u8], fd: Option<BorrowedFd<'_>>) -> io::Result<()> {
        let raw = fd.map(|fd| [fd.as_raw_fd()]);
        let control: Vec<ControlMessage<'_>> = raw.as_ref().map(|r| ControlMessage::ScmRights(r)).into_iter().collect();
        let sent = sendmsg::<()>(
            self.0.as_raw_fd(),
            &[IoSlice::new(message)],
            &control,
            MsgFlags::MSG_NOSIGNAL,
            None,
        )
        .map_err(io::Error::from)?;
        if sent != message.len() {
            return Err(io::Error::new(io::ErrorKind::WriteZero, "message sent in part"));
        }
        Ok(())
    }

    /// Receives one message into `buf`; returns its length (0 at end of
    /// stream) and the descriptor that came with it. A message longer
    /// than `buf` is an error, never silently cut.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<(usize, Option<OwnedFd>)> {
        let mut space = nix::cmsg_space!([RawFd; 1]);
        let mut iov = [IoSliceMut::new(buf)];
        let msg = recvmsg::<()>(
            self.0.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .map_err(io::Error::from)?;
        let mut received = None;
        for cmsg in msg.cmsgs().map_err(io::Error::from)? {
            if let ControlMessageOwned::ScmRights(fds) = cmsg {
                for fd in fds {
                    // SAFETY: the kernel just installed `fd` in this process
                    // for this message; nothing else knows of it.
                    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
                    if received.is_none() {
                        received = Some(owned);
                    }
                }
            }
        }
        if msg.flags.intersects(MsgFlags::MSG_TRUNC | MsgFlags::MSG_CTRUNC) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a message longer than {} bytes arrived", buf.len()),
            ));
        }
        Ok((msg.bytes, received))
    }

    /// No more sends from this end: the peer reads end of stream.
    pub fn close_write(&self) -> io::Result<()> {
        shutdown(self.0.as_raw_fd(), Shutdown::Write).map_err(io::Error::from)
    }

    /// Gives up ownership (for handing fd 3 to a child).
    pub fn into_owned_fd(self) -> OwnedFd {
        self.0
    }
}

impl AsFd for SeqPacket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_keep_their_boundaries_and_carry_a_descriptor() {
        let (a, b) = SeqPacket::pair().unwrap();
        let file = tempfile::tempfile().unwrap();
        a.send(b"one", None).unwrap();
        a.send(b"two!", Some(file.as_fd())).unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(b.recv(&mut buf).unwrap().0, 3);
        let (n, fd) = b.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"two!");
        assert!(fd.is_some());
        a.close_write().unwrap();
        assert_eq!(b.recv(&mut buf).unwrap().0, 0);
    }

    #[test]
    fn an_oversized_message_is_an_error() {
        let (a, b) = SeqPacket::pair().unwrap();
        a.send(&[7u8; 100], None).unwrap();
        let mut buf = [0u8; 10];
        assert!(b.recv(&mut buf).is_err());
    }
}
