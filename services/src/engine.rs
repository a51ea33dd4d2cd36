//! The service engine: what every service (CLM, EVS, CKPT, BACKUP, and the
//! test engines of the simulator) implements, and the context it acts
//! through.
//!
//! The shape follows openais 0.80's `service.h` (library request handlers,
//! executive message handlers, configuration change, the four sync hooks,
//! a state dump), without its function-pointer tables: one trait, one
//! object per service, registered in one [`crate::ServiceTable`].
//!
//! An engine never does IO. It answers clients and multicasts through the
//! [`Ctx`] it is handed; the node drains what it put there.

use bytes::{BufMut, Bytes, BytesMut};
use proto::{
    encode_frame_parts, encode_frame_with_tail, AisError, EncodedFrame, FrameKind, FrameTooBig,
    ServiceId, Version,
};
use totem::{ConfigChange, Guarantee, Instant, McastError, NodeId, RingId};

/// A client connection, as the node's connection table names it. Unique
/// for the life of the daemon (never reused), so a late answer to a closed
/// connection can only be dropped, never misdelivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u64);

/// What `sync_process` reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncStep {
    /// Everything this engine must send for this round was accepted by the
    /// ring.
    Done,
    /// More to send; call again (the ring's queue was full).
    Again,
}

/// One service engine.
pub trait Engine: std::fmt::Debug + Send {
    /// Its service id (also the tag of its messages on the ring).
    fn service(&self) -> ServiceId;

    /// A display name for logs and dumps.
    fn name(&self) -> &'static str;

    /// The interface version it serves (SA Forum negotiation: same release
    /// code, requested major at most this one).
    fn version(&self) -> Version {
        Version::B_01_01
    }

    /// Whether library request `id` needs synchronized state: while a sync
    /// round is running such a request gets `SA_AIS_ERR_TRY_AGAIN`
    /// (openais's flow-control REQUIRED).
    fn request_needs_sync(&self, _id: u16) -> bool {
        true
    }

    /// A client connection to this service was set up.
    fn lib_init(&mut self, _ctx: &mut Ctx<'_>, _conn: ConnId) {}

    /// A client connection went away: drop everything it held.
    fn lib_exit(&mut self, _ctx: &mut Ctx<'_>, _conn: ConnId) {}

    /// A library request. The engine answers through `ctx` (now, or when
    /// its multicast is delivered).
    ///
    /// # Errors
    /// An error is answered to the client as a response with that error and
    /// an empty body, so an engine returns `Err` only before it answered.
    fn lib_request(
        &mut self,
        ctx: &mut Ctx<'_>,
        conn: ConnId,
        id: u16,
        body: Bytes,
    ) -> Result<(), AisError>;

    /// A message of this service delivered by the ring, in total order.
    /// `body` came from a peer: decode it as hostile input.
    fn exec_deliver(&mut self, ctx: &mut Ctx<'_>, from: NodeId, id: u16, body: Bytes);

    /// A transitional or regular configuration change.
    fn confchg(&mut self, _ctx: &mut Ctx<'_>, _change: &ConfigChange) {}

    /// Whether this engine takes part in the barrier sync.
    fn has_sync(&self) -> bool {
        false
    }

    /// Its sync step begins (every member of the configuration reached the
    /// barrier before it).
    fn sync_init(&mut self, _ctx: &mut Ctx<'_>) {}

    /// Send what this step must send.
    fn sync_process(&mut self, _ctx: &mut Ctx<'_>) -> SyncStep {
        SyncStep::Done
    }

    /// Every member finished this step: switch to the synchronized state.
    fn sync_activate(&mut self, _ctx: &mut Ctx<'_>) {}

    /// A new configuration arrived mid-step: throw the step away.
    fn sync_abort(&mut self, _ctx: &mut Ctx<'_>) {}

    /// When [`Engine::handle_timeout`] must run next, if ever.
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    /// The time from `poll_timeout` has come (spurious calls do nothing).
    fn handle_timeout(&mut self, _ctx: &mut Ctx<'_>) {}

    /// A human-readable dump of the engine's state.
    fn dump(&self) -> String;

    // ----- the hooks between CKPT, BACKUP and the backup workers ----------

    /// An immutable snapshot of the checkpoints this engine holds, taken
    /// now (CKPT implements it; the data is shared, copy on write). Other
    /// engines read it through [`Ctx::checkpoint_snapshot`].
    fn checkpoint_snapshot(&self) -> Option<Vec<crate::backup::SnapshotItem>> {
        None
    }

    /// The next file job for the driver's backup workers (BACKUP).
    fn poll_backup_io(&mut self) -> Option<crate::backup::BackupIo> {
        None
    }

    /// A backup file job ended (BACKUP).
    fn handle_backup_io_done(&mut self, _ctx: &mut Ctx<'_>, _done: crate::backup::BackupIoDone) {}

    /// Re-register running backup jobs with the master now (BACKUP, on
    /// SIGHUP).
    fn backup_reregister(&mut self, _ctx: &mut Ctx<'_>) {}

    /// Whether backup work is in flight here (BACKUP; SIGTERM waits).
    fn backup_busy(&self) -> bool {
        false
    }
}

/// Where an engine's multicasts go: the ring. The node implements it over
/// its Totem instance; tests implement it over a vector.
pub trait RingTx {
    /// Queues `payload` for total-order multicast.
    ///
    /// # Errors
    /// As [`totem::Totem::handle_mcast`]; nothing is queued then.
    fn mcast(&mut self, payload: Bytes, guarantee: Guarantee) -> Result<(), McastError>;
}

/// A frame for a client connection, built by an engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientOutput {
    /// The answer to a request.
    Response {
        conn: ConnId,
        service: ServiceId,
        id: u16,
        result: Result<(), AisError>,
        body: Bytes,
    },
    /// A callback for the client's dispatch. Its body is `body`, then
    /// `tail` (written without being copied; empty for most callbacks).
    Callback {
        conn: ConnId,
        service: ServiceId,
        id: u16,
        body: Bytes,
        tail: Bytes,
    },
    /// A frame the engine encoded itself ([`Ctx::encode_callback`]), so
    /// that every client it goes to shares one buffer.
    Frame { conn: ConnId, frame: EncodedFrame },
}

impl ClientOutput {
    /// The connection it goes to.
    pub fn conn(&self) -> ConnId {
        match self {
            ClientOutput::Response { conn, .. }
            | ClientOutput::Callback { conn, .. }
            | ClientOutput::Frame { conn, .. } => *conn,
        }
    }
}

/// What the node knows about the ring, as engines see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RingView {
    /// This node.
    pub local: NodeId,
    /// The current regular configuration.
    pub ring_id: RingId,
    /// Its members, ascending.
    pub members: Vec<NodeId>,
    /// Whether the barrier sync of the current configuration finished.
    pub synced: bool,
}

/// The context an engine acts through during one call.
pub struct Ctx<'a> {
    /// The current time.
    pub now: Instant,
    /// The ring as this node sees it.
    pub ring: &'a RingView,
    service: ServiceId,
    tx: &'a mut dyn RingTx,
    out: &'a mut Vec<ClientOutput>,
    /// The other engines of the table (before and after this one), read
    /// only: how BACKUP reads CKPT's snapshot at the cut.
    peers: [&'a [Box<dyn Engine>]; 2],
    /// Messages delivered in the current regular configuration before the
    /// one being handled.
    position: u64,
}

impl std::fmt::Debug for Ctx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx")
            .field("now", &self.now)
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

impl<'a> Ctx<'a> {
    /// A context for `service`'s engine.
    pub fn new(
        now: Instant,
        ring: &'a RingView,
        service: ServiceId,
        tx: &'a mut dyn RingTx,
        out: &'a mut Vec<ClientOutput>,
    ) -> Ctx<'a> {
        Ctx {
            now,
            ring,
            service,
            tx,
            out,
            peers: [&[], &[]],
            position: 0,
        }
    }

    /// The same context, with read access to the other engines of the
    /// table and the delivery position (the table sets these).
    pub fn with_peers(
        mut self,
        before: &'a [Box<dyn Engine>],
        after: &'a [Box<dyn Engine>],
        position: u64,
    ) -> Ctx<'a> {
        self.peers = [before, after];
        self.position = position;
        self
    }

    /// A snapshot of the checkpoint store as it is at this point of the
    /// total order, if a CKPT engine is in the table.
    pub fn checkpoint_snapshot(&self) -> Option<Vec<crate::backup::SnapshotItem>> {
        self.peers
            .iter()
            .flat_map(|p| p.iter())
            .find_map(|e| e.checkpoint_snapshot())
    }

    /// How many messages the current regular configuration delivered
    /// before the one being handled: with the ring id, a message's
    /// position in the total order.
    pub fn delivery_position(&self) -> u64 {
        self.position
    }

    /// This node's id.
    pub fn local(&self) -> NodeId {
        self.ring.local
    }

    /// Multicasts executive message `id` of this engine's service.
    ///
    /// # Errors
    /// `SA_AIS_ERR_TRY_AGAIN` when the ring's queue is full,
    /// `SA_AIS_ERR_TOO_BIG` when the message exceeds the ring's limit.
    pub fn mcast(&mut self, id: u16, body: &[u8], guarantee: Guarantee) -> Result<(), AisError> {
        self.mcast_parts(id, &[body], guarantee)
    }

    /// Multicasts executive message `id` whose body is `parts` back to
    /// back: a large message is copied once, into the ring's message,
    /// behind the fields an engine puts in front of it.
    ///
    /// # Errors
    /// As [`Ctx::mcast`].
    pub fn mcast_parts(
        &mut self,
        id: u16,
        parts: &[&[u8]],
        guarantee: Guarantee,
    ) -> Result<(), AisError> {
        let payload = ExecHeader {
            service: self.service.into(),
            id,
        }
        .encode_with_parts(parts);
        self.tx.mcast(payload, guarantee).map_err(|e| match e {
            McastError::QueueFull => AisError::TryAgain,
            McastError::TooBig(_) | McastError::Empty => AisError::TooBig,
        })
    }

    /// Answers request `id` of `conn`.
    pub fn respond(&mut self, conn: ConnId, id: u16, result: Result<(), AisError>, body: Bytes) {
        self.out.push(ClientOutput::Response {
            conn,
            service: self.service,
            id,
            result,
            body,
        });
    }

    /// Queues callback `id` for `conn`.
    pub fn callback(&mut self, conn: ConnId, id: u16, body: Bytes) {
        self.callback_with_tail(conn, id, body, Bytes::new());
    }

    /// Queues callback `id` for `conn`, its body `body` then `tail`, which
    /// is written as it is, not copied: it keeps alive what it is a slice
    /// of until the client has it.
    pub fn callback_with_tail(&mut self, conn: ConnId, id: u16, body: Bytes, tail: Bytes) {
        self.out.push(ClientOutput::Callback {
            conn,
            service: self.service,
            id,
            body,
            tail,
        });
    }

    /// Callback `id` of this engine's service encoded once, for
    /// [`Ctx::send_frame`] to any number of clients: its body is `head`
    /// then `tail`. `tail` is copied in below `share_tail_from` bytes, and
    /// above it written as it is (it then keeps alive what it is a slice
    /// of until every client has it).
    ///
    /// # Errors
    /// [`FrameTooBig`] if the body is above a frame's maximum.
    pub fn encode_callback(
        &self,
        id: u16,
        head: &[u8],
        tail: &Bytes,
        share_tail_from: usize,
    ) -> Result<EncodedFrame, FrameTooBig> {
        let (kind, service, ok) = (FrameKind::Callback, self.service.code(), Ok(()));
        if tail.len() >= share_tail_from {
            encode_frame_with_tail(kind, service, id, ok, head, tail.clone())
        } else {
            encode_frame_parts(kind, service, id, ok, &[head, tail]).map(EncodedFrame::from)
        }
    }

    /// Queues `frame`, one of [`Ctx::encode_callback`]'s, for `conn`.
    pub fn send_frame(&mut self, conn: ConnId, frame: EncodedFrame) {
        self.out.push(ClientOutput::Frame { conn, frame });
    }
}

/// The header of every message services put on the ring: which service
/// and which of its executive messages (openais's `(service << 16) | fn`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExecHeader {
    /// The service id, or [`crate::barrier::SYNC_SERVICE`] for barrier
    /// messages.
    pub service: u16,
    /// The message id within the service.
    pub id: u16,
}

impl ExecHeader {
    /// Bytes of the header on the ring.
    pub const LEN: usize = 4;

    /// Prepends the header to `body`.
    pub fn encode_with(self, body: &[u8]) -> Bytes {
        self.encode_with_parts(&[body])
    }

    /// Prepends the header to the body made of `parts` back to back.
    pub fn encode_with_parts(self, parts: &[&[u8]]) -> Bytes {
        let len = parts.iter().map(|p| p.len()).sum::<usize>();
        let mut b = BytesMut::with_capacity(Self::LEN + len);
        b.put_u16_le(self.service);
        b.put_u16_le(self.id);
        for part in parts {
            b.put_slice(part);
        }
        b.freeze()
    }

    /// Splits a delivered payload into its header and body. `None` when the
    /// payload is too short to hold a header; the service id is not checked
    /// here (an unknown service is the caller's to count and drop).
    pub fn decode(payload: &Bytes) -> Option<(u16, u16, Bytes)> {
        let head = payload.get(..Self::LEN)?;
        let service = u16::from_le_bytes([head[0], head[1]]);
        let id = u16::from_le_bytes([head[2], head[3]]);
        Some((service, id, payload.slice(Self::LEN..)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_header_round_trip_and_short_payload() {
        let p = ExecHeader { service: 1, id: 7 }.encode_with(b"abc");
        let (s, id, body) = ExecHeader::decode(&p).unwrap();
        assert_eq!((s, id, &body[..]), (1, 7, &b"abc"[..]));
        let p = ExecHeader { service: 2, id: 9 }.encode_with_parts(&[b"ab", b"", b"cd"]);
        let (s, id, body) = ExecHeader::decode(&p).unwrap();
        assert_eq!((s, id, &body[..]), (2, 9, &b"abcd"[..]));
        assert_eq!(
            ExecHeader::decode(&Bytes::from_static(b"\x01\x00\x02")),
            None
        );
    }
}
