//! Who may talk to the executive: the peer credentials of a connection
//! (SO_PEERCRED) checked against an allow list.
//!
//! openais 0.80 admitted a client if its uid was 0 or its gid was the
//! configured group's (`aisexec { group: ais }`). We admit, in this order:
//! root, the user the executive itself runs as (so an unprivileged
//! `make run` cluster serves its own user's tools), any uid of the list, any
//! gid of the list. The gid is the one SO_PEERCRED reports (the peer's
//! effective gid when it called `connect()`) or, failing that, one of the
//! peer's supplementary groups as SO_PEERGROUPS reports them (Linux 4.13;
//! read only when the other checks refused and the list has groups).

use std::collections::BTreeSet;
use std::fmt;

/// A peer's credentials as the kernel reported them at `connect()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Creds {
    /// The peer's process id.
    pub pid: i32,
    /// The peer's effective user id.
    pub uid: u32,
    /// The peer's effective group id.
    pub gid: u32,
}

impl fmt::Display for Creds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pid {} uid {} gid {}", self.pid, self.uid, self.gid)
    }
}

/// Why a peer was admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AllowedBy {
    /// The peer is root.
    Root,
    /// The peer runs as the executive's own effective uid.
    SameUser,
    /// The peer's uid is in the allow list.
    Uid,
    /// The peer's gid is in the allow list.
    Gid,
    /// One of the peer's supplementary groups is in the allow list.
    SupplementaryGid,
}

/// Extra uids and gids admitted besides root and the executive's own user.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllowList {
    /// Admitted user ids.
    pub uids: BTreeSet<u32>,
    /// Admitted group ids (the peer's effective gid).
    pub gids: BTreeSet<u32>,
}

impl AllowList {
    /// Admits root and the executive's own user only.
    pub fn new() -> AllowList {
        AllowList::default()
    }

    /// Also admits `uid`.
    pub fn with_uid(mut self, uid: u32) -> AllowList {
        self.uids.insert(uid);
        self
    }

    /// Also admits peers whose effective gid is `gid`.
    pub fn with_gid(mut self, gid: u32) -> AllowList {
        self.gids.insert(gid);
        self
    }

    /// Whether any group is admitted (so supplementary groups matter).
    pub fn has_groups(&self) -> bool {
        !self.gids.is_empty()
    }

    /// As [`AllowList::admit`], and else admitted by one of the peer's
    /// supplementary `groups`.
    pub fn admit_with_groups(
        &self,
        creds: &Creds,
        daemon_euid: u32,
        groups: &[u32],
    ) -> Option<AllowedBy> {
        self.admit(creds, daemon_euid).or_else(|| {
            groups
                .iter()
                .any(|g| self.gids.contains(g))
                .then_some(AllowedBy::SupplementaryGid)
        })
    }

    /// Whether (and why) a peer with `creds` is admitted by an executive
    /// running with effective uid `daemon_euid`; `None` means refused.
    pub fn admit(&self, creds: &Creds, daemon_euid: u32) -> Option<AllowedBy> {
        if creds.uid == 0 {
            Some(AllowedBy::Root)
        } else if creds.uid == daemon_euid {
            Some(AllowedBy::SameUser)
        } else if self.uids.contains(&creds.uid) {
            Some(AllowedBy::Uid)
        } else if self.gids.contains(&creds.gid) {
            Some(AllowedBy::Gid)
        } else {
            None
        }
    }
}

/// Most supplementary groups read of a peer (Linux's NGROUPS_MAX).
const MAX_PEER_GROUPS: usize = 65_536;

/// The supplementary groups of the peer of a connected Unix socket, as
/// they were at `connect()` (SO_PEERGROUPS).
///
/// # Errors
/// The kernel does not offer SO_PEERGROUPS, or the call failed.
pub fn peer_groups(socket: std::os::fd::BorrowedFd<'_>) -> std::io::Result<Vec<u32>> {
    use std::os::fd::AsRawFd;
    let mut groups: Vec<libc::gid_t> = vec![0; 64];
    loop {
        let capacity = groups.len() * std::mem::size_of::<libc::gid_t>();
        let mut len = libc::socklen_t::try_from(capacity).unwrap_or(libc::socklen_t::MAX);
        // SAFETY: `groups` is a live buffer of `len` bytes, which the
        // kernel writes at most `len` bytes into, and `len` is a valid
        // socklen_t it updates in place; the fd is borrowed, so open.
        #[allow(unsafe_code)]
        let rc = unsafe {
            libc::getsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_PEERGROUPS,
                groups.as_mut_ptr().cast(),
                &mut len,
            )
        };
        let needed =
            usize::try_from(len).unwrap_or(usize::MAX) / std::mem::size_of::<libc::gid_t>();
        if rc == 0 {
            groups.truncate(needed.min(groups.len()));
            return Ok(groups);
        }
        let error = std::io::Error::last_os_error();
        // ERANGE: the buffer was too small and `len` says what is needed.
        if error.raw_os_error() == Some(libc::ERANGE)
            && needed > groups.len()
            && needed <= MAX_PEER_GROUPS
        {
            groups.resize(needed, 0);
            continue;
        }
        return Err(error);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(uid: u32, gid: u32) -> Creds {
        Creds { pid: 42, uid, gid }
    }

    #[test]
    fn policy_table() {
        const DAEMON: u32 = 500;
        let list = AllowList::new().with_uid(1001).with_gid(77);
        let table = [
            (creds(0, 0), Some(AllowedBy::Root)),
            (creds(0, 9999), Some(AllowedBy::Root)),
            (creds(DAEMON, 1), Some(AllowedBy::SameUser)),
            (creds(1001, 1), Some(AllowedBy::Uid)),
            (creds(1002, 77), Some(AllowedBy::Gid)),
            (creds(1002, 78), None),
            (creds(65534, 65534), None),
            // A gid equal to an allowed uid is not an allowed gid.
            (creds(1003, 1001), None),
        ];
        for (peer, expected) in table {
            assert_eq!(list.admit(&peer, DAEMON), expected, "{peer}");
        }
    }

    #[test]
    fn supplementary_groups_admit_only_listed_groups() {
        let list = AllowList::new().with_gid(77);
        let peer = creds(1002, 1);
        assert_eq!(list.admit_with_groups(&peer, 500, &[5, 6]), None);
        assert_eq!(
            list.admit_with_groups(&peer, 500, &[5, 77]),
            Some(AllowedBy::SupplementaryGid)
        );
        // The cheaper reasons come first.
        assert_eq!(
            list.admit_with_groups(&creds(1002, 77), 500, &[77]),
            Some(AllowedBy::Gid)
        );
        assert!(list.has_groups() && !AllowList::new().has_groups());
    }

    #[test]
    fn peer_groups_of_a_socket_pair_are_ours() {
        use std::os::fd::AsFd;
        let (a, _b) = std::os::unix::net::UnixStream::pair().expect("pair");
        let mut got = peer_groups(a.as_fd()).expect("SO_PEERGROUPS");
        let mut ours: Vec<u32> = nix::unistd::getgroups()
            .expect("getgroups")
            .into_iter()
            .map(|g| g.as_raw())
            .collect();
        got.sort_unstable();
        ours.sort_unstable();
        assert_eq!(got, ours);
    }

    #[test]
    fn empty_list_admits_only_root_and_own_user() {
        let list = AllowList::new();
        assert_eq!(list.admit(&creds(0, 5), 0), Some(AllowedBy::Root));
        assert_eq!(list.admit(&creds(500, 5), 500), Some(AllowedBy::SameUser));
        assert_eq!(list.admit(&creds(501, 5), 500), None);
        // A root daemon with an empty list admits only root.
        assert_eq!(list.admit(&creds(501, 0), 0), None);
    }
}
