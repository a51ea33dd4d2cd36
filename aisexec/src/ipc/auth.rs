//! Who may talk to the executive: the peer credentials of a connection
//! (SO_PEERCRED) checked against an allow list.
//!
//! openais 0.80 admitted a client if its uid was 0 or its gid was the
//! configured group's (`aisexec { group: ais }`). We admit, in this order:
//! root, the user the executive itself runs as (so an unprivileged
//! `make run` cluster serves its own user's tools), any uid of the list, any
//! gid of the list. The gid is the one SO_PEERCRED reports: the peer's
//! effective gid when it called `connect()`; supplementary groups are not
//! seen.

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
    fn empty_list_admits_only_root_and_own_user() {
        let list = AllowList::new();
        assert_eq!(list.admit(&creds(0, 5), 0), Some(AllowedBy::Root));
        assert_eq!(list.admit(&creds(500, 5), 500), Some(AllowedBy::SameUser));
        assert_eq!(list.admit(&creds(501, 5), 500), None);
        // A root daemon with an empty list admits only root.
        assert_eq!(list.admit(&creds(501, 0), 0), None);
    }
}
