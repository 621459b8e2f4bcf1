//! Who we are and who is on the other end of a socket.

use std::os::fd::AsFd;

/// This process's effective uid.
pub fn effective_uid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// The credentials of a Unix-socket peer, from the kernel (SO_PEERCRED):
/// they cannot be forged by the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerCredentials {
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
}

/// SO_PEERCRED of a connected Unix socket.
pub fn peer_credentials(socket: &impl AsFd) -> std::io::Result<PeerCredentials> {
    let creds = nix::sys::socket::getsockopt(socket, nix::sys::socket::sockopt::PeerCredentials)
        .map_err(std::io::Error::from)?;
    Ok(PeerCredentials {
        pid: creds.pid(),
        uid: creds.uid(),
        gid: creds.gid(),
    })
}

/// The uid and primary gid of a user given by name or number.
pub fn lookup(user: &str) -> std::io::Result<Option<(u32, u32)>> {
    let found = match user.parse::<u32>() {
        Ok(uid) => nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)),
        Err(_) => nix::unistd::User::from_name(user),
    }
    .map_err(std::io::Error::from)?;
    Ok(found.map(|u| (u.uid.as_raw(), u.gid.as_raw())))
}

/// The gid of the group `name`, if it exists.
pub fn group_id(name: &str) -> std::io::Result<Option<u32>> {
    let found = nix::unistd::Group::from_name(name).map_err(std::io::Error::from)?;
    Ok(found.map(|g| g.gid.as_raw()))
}

/// Whether this process may give a file it owns to group `gid`: root may
/// give any group; anyone else only one they are in (chown(2)).
pub fn may_give_to_group(gid: u32) -> bool {
    let gid = nix::unistd::Gid::from_raw(gid);
    nix::unistd::geteuid().is_root()
        || nix::unistd::getegid() == gid
        || nix::unistd::getgroups().is_ok_and(|groups| groups.contains(&gid))
}
