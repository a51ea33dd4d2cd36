//! The status service ([`ServiceId::Cfg`](crate::ServiceId::Cfg)): what
//! `ais-ring-status` shows.
//!
//! Requests (Request frames on a CFG connection):
//! - [`RING_STATUS`] (id 0), empty body: answered by a Response whose body
//!   is a [`RingStatus`].
//!
//! The counters are an open list of `(name, value)` pairs so the executive
//! can add counters without breaking older clients; a client shows the ones
//! it gets, in the order given.

use bytes::Bytes;

use crate::codec::{DecodeError, Decoder, Encoder};
use crate::setup::Version;

/// Request id: the ring status (empty body; the response is a
/// [`RingStatus`]).
pub const RING_STATUS: u16 = 0;

/// The status service's interface version.
pub const VERSION: Version = Version::new(b'A', 1, 1);

/// Most members a status lists.
pub const MAX_MEMBERS: usize = 256;
/// Longest member address, in bytes.
pub const MAX_ADDR_BYTES: usize = 256;
/// Longest member name, in bytes.
pub const MAX_NAME_BYTES: usize = 256;
/// Most counters a status lists.
pub const MAX_COUNTERS: usize = 512;
/// Longest counter name, in bytes.
pub const MAX_COUNTER_NAME_BYTES: usize = 64;

/// The Totem state of the node, as the status service reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RingState {
    /// A ring is installed and the token circulates.
    Operational = 0,
    /// Looking for members.
    Gather = 1,
    /// The commit token circulates the proposed ring.
    Commit = 2,
    /// The new ring recovers the old rings' messages.
    Recovery = 3,
}

impl RingState {
    /// The state with wire value `code`.
    pub fn from_code(code: u8) -> Option<RingState> {
        match code {
            0 => Some(RingState::Operational),
            1 => Some(RingState::Gather),
            2 => Some(RingState::Commit),
            3 => Some(RingState::Recovery),
            _ => None,
        }
    }

    /// The name as the Totem paper says it, lower case.
    pub fn name(self) -> &'static str {
        match self {
            RingState::Operational => "operational",
            RingState::Gather => "gather",
            RingState::Commit => "commit",
            RingState::Recovery => "recovery",
        }
    }
}

/// A ring's identity: sequence number and representative node id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RingId {
    /// The ring sequence number.
    pub seq: u64,
    /// The representative that formed the ring.
    pub rep: u32,
}

/// A member of the current ring.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// The node id.
    pub id: u32,
    /// Its ring address as text (at most [`MAX_ADDR_BYTES`]).
    pub addr: String,
    /// Its name from the nodelist, or empty (at most [`MAX_NAME_BYTES`]).
    pub name: String,
}

/// The answer to [`RING_STATUS`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RingStatus {
    /// This node's id.
    pub node_id: u32,
    /// The ring installed last (or being formed).
    pub ring_id: RingId,
    /// The Totem state.
    pub state: RingState,
    /// The members of the current ring, at most [`MAX_MEMBERS`].
    pub members: Vec<Member>,
    /// Named counters, at most [`MAX_COUNTERS`].
    pub counters: Vec<(String, u64)>,
    /// Whether the services finished syncing after the last membership
    /// change.
    pub sync_done: bool,
}

impl RingStatus {
    /// The response body.
    ///
    /// # Panics
    /// Never for a status within the documented maximums; a status beyond
    /// them encodes but does not decode (so the executive must keep to
    /// them: it does, its ring is smaller than [`MAX_MEMBERS`]).
    pub fn encode(&self) -> Bytes {
        let mut enc = Encoder::new();
        enc.put_u32(self.node_id)
            .put_u64(self.ring_id.seq)
            .put_u32(self.ring_id.rep)
            .put_u8(self.state as u8)
            .put_count(self.members.len());
        for member in &self.members {
            enc.put_u32(member.id)
                .put_str(&member.addr)
                .put_str(&member.name);
        }
        enc.put_count(self.counters.len());
        for (name, value) in &self.counters {
            enc.put_str(name).put_u64(*value);
        }
        enc.put_bool(self.sync_done);
        enc.finish()
    }

    /// Reads a response body.
    ///
    /// # Errors
    /// A [`DecodeError`] for a malformed body or one beyond the maximums.
    pub fn decode(body: &[u8]) -> Result<RingStatus, DecodeError> {
        let mut dec = Decoder::new(body);
        let node_id = dec.get_u32()?;
        let ring_id = RingId {
            seq: dec.get_u64()?,
            rep: dec.get_u32()?,
        };
        let state = dec.get_u8()?;
        let state = RingState::from_code(state).ok_or(DecodeError::BadValue {
            what: "ring state",
            value: state.into(),
        })?;
        // Each member takes at least 4 + 4 + 4 bytes, each counter 4 + 8.
        let count = dec.get_count("members", MAX_MEMBERS, 12)?;
        let mut members = Vec::with_capacity(count);
        for _ in 0..count {
            members.push(Member {
                id: dec.get_u32()?,
                addr: dec.get_string("member address", MAX_ADDR_BYTES)?,
                name: dec.get_string("member name", MAX_NAME_BYTES)?,
            });
        }
        let count = dec.get_count("counters", MAX_COUNTERS, 12)?;
        let mut counters = Vec::with_capacity(count);
        for _ in 0..count {
            let name = dec.get_string("counter name", MAX_COUNTER_NAME_BYTES)?;
            counters.push((name, dec.get_u64()?));
        }
        let sync_done = dec.get_bool("sync_done")?;
        dec.finish()?;
        Ok(RingStatus {
            node_id,
            ring_id,
            state,
            members,
            counters,
            sync_done,
        })
    }

    /// The value of counter `name`, if listed.
    pub fn counter(&self, name: &str) -> Option<u64> {
        self.counters
            .iter()
            .find(|(counter, _)| counter == name)
            .map(|&(_, value)| value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> RingStatus {
        RingStatus {
            node_id: 2,
            ring_id: RingId { seq: 44, rep: 1 },
            state: RingState::Operational,
            members: vec![
                Member {
                    id: 1,
                    addr: "127.0.0.1:5405".into(),
                    name: "node1".into(),
                },
                Member {
                    id: 2,
                    addr: "127.0.0.2:5405".into(),
                    name: String::new(),
                },
            ],
            counters: vec![("token_rotations".into(), 1234), ("mcast_tx".into(), 9)],
            sync_done: true,
        }
    }

    #[test]
    fn ring_status_round_trips() {
        let status = sample();
        assert_eq!(RingStatus::decode(&status.encode()), Ok(status.clone()));
        assert_eq!(status.counter("mcast_tx"), Some(9));
        assert_eq!(status.counter("absent"), None);
    }

    #[test]
    fn every_prefix_and_extension_is_refused() {
        let body = sample().encode();
        for len in 0..body.len() {
            assert!(RingStatus::decode(&body[..len]).is_err(), "prefix {len}");
        }
        let mut longer = body.to_vec();
        longer.push(0);
        assert_eq!(
            RingStatus::decode(&longer),
            Err(DecodeError::TrailingBytes(1))
        );
    }

    #[test]
    fn bad_state_and_too_many_members_are_refused() {
        let mut body = sample().encode().to_vec();
        body[16] = 9; // the state byte: after node_id (4), seq (8), rep (4)
        assert!(matches!(
            RingStatus::decode(&body),
            Err(DecodeError::BadValue {
                what: "ring state",
                value: 9
            })
        ));
        let mut body = sample().encode().to_vec();
        body[17..21].copy_from_slice(&(MAX_MEMBERS as u32 + 1).to_le_bytes());
        assert!(matches!(
            RingStatus::decode(&body),
            Err(DecodeError::TooLong {
                what: "members",
                ..
            })
        ));
    }

    fn any_status() -> impl Strategy<Value = RingStatus> {
        let member = (any::<u32>(), ".{0,20}", ".{0,20}").prop_map(|(id, addr, name)| Member {
            id,
            addr,
            name,
        });
        (
            any::<u32>(),
            any::<u64>(),
            any::<u32>(),
            0u8..4,
            proptest::collection::vec(member, 0..8),
            proptest::collection::vec(("[a-z_]{0,20}", any::<u64>()), 0..8),
            any::<bool>(),
        )
            .prop_map(|(node_id, seq, rep, state, members, counters, sync_done)| {
                RingStatus {
                    node_id,
                    ring_id: RingId { seq, rep },
                    state: RingState::from_code(state).unwrap(),
                    members,
                    counters,
                    sync_done,
                }
            })
    }

    proptest! {
        #[test]
        fn any_status_round_trips(status in any_status()) {
            prop_assert_eq!(RingStatus::decode(&status.encode()), Ok(status));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            if let Ok(status) = RingStatus::decode(&bytes) {
                prop_assert_eq!(&status.encode()[..], &bytes[..]);
            }
        }

        #[test]
        fn mutated_bodies_never_panic(
            status in any_status(),
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        ) {
            let mut body = status.encode().to_vec();
            for (at, byte) in flips {
                if !body.is_empty() {
                    let at = at % body.len();
                    body[at] = byte;
                }
            }
            let _ = RingStatus::decode(&body);
        }
    }
}
