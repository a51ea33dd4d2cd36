//! The client connection table: which service each connection talks to
//! and whether its setup (Hello) is done.

use std::collections::BTreeMap;

use proto::ServiceId;
use services::ConnId;

/// The peer credentials of a local client (SO_PEERCRED).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Creds {
    /// Its process id.
    pub pid: i32,
    /// Its user id.
    pub uid: u32,
    /// Its group id.
    pub gid: u32,
}

/// Where a connection is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Connected; the first frame must be a Hello.
    AwaitHello,
    /// Set up for this service.
    Open(ServiceId),
    /// Refused or in violation: its remaining frames are ignored until the
    /// driver closes it.
    Closing,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Client {
    pub(crate) phase: Phase,
}

/// Every connection the node knows.
#[derive(Debug)]
pub(crate) struct Clients {
    by_id: BTreeMap<ConnId, Client>,
    next: u64,
    max: usize,
}

impl Clients {
    pub(crate) fn new(max: usize) -> Clients {
        Clients {
            by_id: BTreeMap::new(),
            next: 1,
            max,
        }
    }

    /// A new connection, or `None` when the table is full.
    pub(crate) fn add(&mut self) -> Option<ConnId> {
        if self.by_id.len() >= self.max {
            return None;
        }
        let id = ConnId(self.next);
        self.next += 1;
        self.by_id.insert(
            id,
            Client {
                phase: Phase::AwaitHello,
            },
        );
        Some(id)
    }

    pub(crate) fn get(&self, id: ConnId) -> Option<&Client> {
        self.by_id.get(&id)
    }

    pub(crate) fn set_phase(&mut self, id: ConnId, phase: Phase) {
        if let Some(c) = self.by_id.get_mut(&id) {
            c.phase = phase;
        }
    }

    pub(crate) fn remove(&mut self, id: ConnId) -> Option<Client> {
        self.by_id.remove(&id)
    }

    pub(crate) fn contains(&self, id: ConnId) -> bool {
        self.by_id.contains_key(&id)
    }

    pub(crate) fn len(&self) -> usize {
        self.by_id.len()
    }
}
