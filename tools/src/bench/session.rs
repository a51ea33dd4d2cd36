//! One participant: an EVS connection to one node, joined to the bench
//! group, counting what it delivers.
//!
//! Every participant counts every bench message it delivers from the
//! moment it joined: per stream (sender) the messages, the FIFO
//! violations and the End total; overall the Data messages, their bytes,
//! the first and last delivery instants and the delivery-order hash.
//!
//! # The start barrier
//! EVS has no per-group membership, so participants meet in band: each
//! one, after joining, multicasts Ready (its `total` = how many
//! participants it has heard from). A participant is through the barrier
//! once it heard any message from every participant *and* every
//! participant said in a Ready that it heard from all: otherwise a peer
//! that joined after our first Ready could wait for us after we finished
//! a short run and left. It resends Ready every [`READY_RESEND`] while it
//! is not through, and answers a peer's incomplete Ready with its own (at
//! most every [`READY_REPLY_GAP`]). A sender
//! starts only after the barrier: by then every participant had joined
//! (it joined before its Ready), so every participant delivers all its
//! Data.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use ais::client::ClientConfig;
use ais::evs::{Evs, EvsCallback, EvsError};
use nix::time::{clock_gettime, ClockId};
use proto::evs::{EvsGuarantee, Group};
use proto::AisError;

use super::message::{message_bytes, Header, Kind, StreamKey, HEADER_BYTES};
use super::stats::OrderHash;
use super::BenchError;

/// How often a participant still in the barrier resends Ready.
pub const READY_RESEND: Duration = Duration::from_millis(100);

/// Least time between two answers to peers' incomplete Readies.
pub const READY_REPLY_GAP: Duration = Duration::from_millis(50);

/// How long connecting waits for a daemon that answers TRY_AGAIN (not
/// running yet, or syncing).
const CONNECT_PATIENCE: Duration = Duration::from_secs(10);

/// Callbacks the client library may hold while a call waits: far above
/// what one multicast's round trip lets arrive, since the bench drains
/// after every few sends.
const MAX_CALLBACK_FRAMES: usize = 1 << 20;
/// Bytes of such callbacks.
const MAX_CALLBACK_BYTES: usize = 1 << 30;

/// CLOCK_MONOTONIC in nanoseconds: one clock for every process on the host,
/// so a receiver can subtract a sender's stamp.
pub fn mono_ns() -> u64 {
    clock_gettime(ClockId::CLOCK_MONOTONIC)
        .map(|t| {
            u64::try_from(t.tv_sec()).unwrap_or(0) * 1_000_000_000
                + u64::try_from(t.tv_nsec()).unwrap_or(0)
        })
        .unwrap_or(0)
}

/// What a participant counted of one stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamTally {
    /// Data messages delivered.
    pub got: u64,
    /// The sequence number expected next.
    pub next_seq: u64,
    /// Data messages whose sequence number was not the expected one.
    pub fifo_violations: u64,
    /// The stream's End: how many Data it sent.
    pub end_total: Option<u64>,
}

/// One participant.
#[derive(Debug)]
pub struct Session {
    evs: Evs,
    /// Who this participant is on the wire.
    pub me: StreamKey,
    participants: usize,
    heard: BTreeSet<StreamKey>,
    /// Participants whose Ready said they heard from every participant.
    heard_all: BTreeSet<StreamKey>,
    /// We sent a Ready saying we heard from all.
    announced_all: bool,
    last_ready: Option<Instant>,
    ready_asked: bool,
    /// Per stream, what was delivered.
    pub streams: BTreeMap<StreamKey, StreamTally>,
    /// Data messages delivered.
    pub data_msgs: u64,
    /// Their bytes.
    pub data_bytes: u64,
    /// When the first and the last Data were delivered.
    pub data_window: Option<(Instant, Instant)>,
    /// The delivery order of Data.
    pub order: OrderHash,
    /// Latency probes: the own probe awaited, and whether it came (with
    /// when).
    pub awaiting_own: Option<u64>,
    /// When the awaited own probe was delivered.
    pub own_delivered: Option<Instant>,
    /// Latency probes of other streams at or past this seq are measured.
    pub oneway_from_seq: u64,
    /// One-way delays of other streams' probes, ns.
    pub oneway_ns: Vec<u64>,
    /// Members of the last configuration change.
    pub members: Vec<u32>,
    /// Configuration changes seen.
    pub confchgs: u64,
}

impl Session {
    /// Connects to the daemon at `socket`, joins `group` and learns this
    /// node's id. `stream` numbers this participant within the process;
    /// `participants` is how many the barrier waits for, cluster-wide.
    ///
    /// # Errors
    /// The daemon cannot be reached or refused a call.
    pub fn open(
        socket: &Path,
        stream: u32,
        group: &Group,
        participants: usize,
    ) -> Result<Session, BenchError> {
        let mut config = ClientConfig::with_socket(socket);
        config.max_callback_frames = MAX_CALLBACK_FRAMES;
        config.max_callback_bytes = MAX_CALLBACK_BYTES;
        let deadline = Instant::now() + CONNECT_PATIENCE;
        let mut evs = loop {
            match Evs::connect_with(&config) {
                Ok(evs) => break evs,
                Err(EvsError::Ais(AisError::TryAgain)) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => return Err(BenchError::evs("connect", socket, e)),
            }
        };
        let local = evs
            .membership_get()
            .map_err(|e| BenchError::evs("membership_get", socket, e))?
            .local;
        evs.join(std::slice::from_ref(group))
            .map_err(|e| BenchError::evs("join", socket, e))?;
        Ok(Session {
            evs,
            me: StreamKey {
                node_id: local,
                pid: std::process::id(),
                stream,
            },
            participants,
            heard: BTreeSet::new(),
            heard_all: BTreeSet::new(),
            announced_all: false,
            last_ready: None,
            ready_asked: false,
            streams: BTreeMap::new(),
            data_msgs: 0,
            data_bytes: 0,
            data_window: None,
            order: OrderHash::default(),
            awaiting_own: None,
            own_delivered: None,
            oneway_from_seq: 0,
            oneway_ns: Vec::new(),
            members: Vec::new(),
            confchgs: 0,
        })
    }

    /// A header of kind `kind` from this participant.
    pub fn header(&self, kind: Kind, seq: u64, total: u64) -> Header {
        Header {
            kind,
            pid: self.me.pid,
            stream: self.me.stream,
            seq,
            t_send_ns: mono_ns(),
            total,
        }
    }

    /// Multicasts `msg` (agreed); on TRY_AGAIN, takes every callback
    /// waiting (waiting up to `backoff` for one first) and tries again.
    /// Returns how many times it had to try again.
    ///
    /// # Errors
    /// Any other error of the multicast or of taking callbacks.
    pub fn send(&mut self, msg: &[u8], backoff: Duration) -> Result<u64, BenchError> {
        let mut retries = 0;
        loop {
            match self.evs.mcast_joined(EvsGuarantee::Agreed, &[msg]) {
                Ok(()) => return Ok(retries),
                Err(EvsError::Ais(AisError::TryAgain)) => {
                    retries += 1;
                    if backoff.is_zero() {
                        self.drain()?;
                    } else {
                        self.pump(backoff)?;
                    }
                }
                Err(e) => return Err(BenchError::Evs("mcast_joined", e)),
            }
        }
    }

    /// Takes every callback available now, without waiting.
    ///
    /// # Errors
    /// The connection broke.
    pub fn drain(&mut self) -> Result<(), BenchError> {
        while let Some(cb) = self
            .evs
            .next_callback(false)
            .map_err(|e| BenchError::Evs("dispatch", e))?
        {
            self.handle(cb);
        }
        Ok(())
    }

    /// Waits up to `timeout` for a callback, then takes every one
    /// available.
    ///
    /// # Errors
    /// The connection broke.
    pub fn pump(&mut self, timeout: Duration) -> Result<(), BenchError> {
        // Waiting goes through the selection object, as a C client's poll
        // would; the client library's timed receive does the same.
        let first = match self.evs.next_callback(false) {
            Ok(Some(cb)) => Some(cb),
            Ok(None) => self.wait_one(timeout)?,
            Err(e) => return Err(BenchError::Evs("dispatch", e)),
        };
        if let Some(cb) = first {
            self.handle(cb);
        }
        self.drain()
    }

    fn wait_one(&mut self, timeout: Duration) -> Result<Option<EvsCallback>, BenchError> {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let ms = u16::try_from(timeout.as_millis().max(1)).unwrap_or(u16::MAX);
        let polled = {
            let mut fds = [PollFd::new(self.evs.selection(), PollFlags::POLLIN)];
            poll(&mut fds, PollTimeout::from(ms))
        };
        match polled {
            Ok(0) | Err(nix::errno::Errno::EINTR) => Ok(None),
            Ok(_) => self
                .evs
                .next_callback(false)
                .map_err(|e| BenchError::Evs("dispatch", e)),
            Err(e) => Err(BenchError::Io("poll", std::io::Error::from(e))),
        }
    }

    /// Files one callback.
    fn handle(&mut self, cb: EvsCallback) {
        let now = Instant::now();
        let d = match cb {
            EvsCallback::ConfChg(c) => {
                self.members = c.members;
                self.confchgs += 1;
                return;
            }
            EvsCallback::Deliver(d) => d,
        };
        let Some(h) = Header::read(&d.msg) else {
            return;
        };
        let key = StreamKey {
            node_id: d.node_id,
            pid: h.pid,
            stream: h.stream,
        };
        self.heard.insert(key);
        match h.kind {
            Kind::Ready => {
                if usize::try_from(h.total).unwrap_or(0) >= self.participants {
                    self.heard_all.insert(key);
                } else if key != self.me {
                    self.ready_asked = true;
                }
            }
            Kind::Data => {
                let t = self.streams.entry(key).or_default();
                if h.seq != t.next_seq {
                    t.fifo_violations += 1;
                }
                t.next_seq = h.seq.wrapping_add(1);
                t.got += 1;
                self.data_msgs += 1;
                self.data_bytes += d.msg.len() as u64;
                self.data_window = Some(match self.data_window {
                    None => (now, now),
                    Some((first, _)) => (first, now),
                });
                let mut id = [0u8; 20];
                id[0..4].copy_from_slice(&key.node_id.to_le_bytes());
                id[4..8].copy_from_slice(&key.pid.to_le_bytes());
                id[8..12].copy_from_slice(&key.stream.to_le_bytes());
                id[12..20].copy_from_slice(&h.seq.to_le_bytes());
                self.order.add(&id);
            }
            Kind::End => {
                let t = self.streams.entry(key).or_default();
                t.end_total.get_or_insert(h.total);
            }
            Kind::Latency => {
                if key == self.me {
                    if self.awaiting_own == Some(h.seq) {
                        self.own_delivered = Some(now);
                    }
                } else if h.seq >= self.oneway_from_seq {
                    self.oneway_ns.push(mono_ns().saturating_sub(h.t_send_ns));
                }
            }
        }
    }

    /// Whether every participant said it heard from every participant
    /// (each was heard from, then: `heard_all` is a subset of `heard`).
    pub fn through_barrier(&self) -> bool {
        self.heard_all.len() >= self.participants
    }

    /// Sends Ready now if still in the barrier and [`READY_RESEND`] passed,
    /// or if a peer asked and [`READY_REPLY_GAP`] passed.
    ///
    /// # Errors
    /// As [`Session::send`].
    pub fn tend_barrier(&mut self) -> Result<(), BenchError> {
        let now = Instant::now();
        let since = self.last_ready.map(|t| now.duration_since(t));
        let heard_everyone = self.heard.len() >= self.participants;
        let due = match since {
            None => true,
            // Tell the others at once: they wait for it.
            Some(_) if heard_everyone && !self.announced_all => true,
            Some(s) if !self.through_barrier() => s >= READY_RESEND,
            Some(s) => self.ready_asked && s >= READY_REPLY_GAP,
        };
        if !due {
            return Ok(());
        }
        self.ready_asked = false;
        self.last_ready = Some(now);
        self.announced_all |= heard_everyone;
        let mut buf = [0u8; HEADER_BYTES];
        self.header(Kind::Ready, 0, self.heard.len() as u64)
            .write(&mut buf);
        self.send(&buf, Duration::ZERO).map(|_| ())
    }

    /// Waits until every participant has been heard from, or `deadline`.
    ///
    /// # Errors
    /// [`BenchError::Timeout`] at the deadline; the connection's errors.
    pub fn barrier(&mut self, deadline: Instant) -> Result<(), BenchError> {
        while !self.through_barrier() {
            if Instant::now() >= deadline {
                return Err(BenchError::Timeout(format!(
                    "start barrier: heard from {} of {} participants, {} of them heard from all",
                    self.heard.len(),
                    self.participants,
                    self.heard_all.len()
                )));
            }
            self.tend_barrier()?;
            self.pump(Duration::from_millis(20))?;
        }
        Ok(())
    }

    /// How many streams have sent their End.
    pub fn ends(&self) -> usize {
        self.streams
            .values()
            .filter(|t| t.end_total.is_some())
            .count()
    }

    /// Data messages sent but not delivered here, over the streams that
    /// ended.
    pub fn lost(&self) -> u64 {
        self.streams
            .values()
            .filter_map(|t| t.end_total.map(|e| e.saturating_sub(t.got)))
            .sum()
    }

    /// FIFO violations over all streams.
    pub fn fifo_violations(&self) -> u64 {
        self.streams.values().map(|t| t.fifo_violations).sum()
    }

    /// A zeroed message of `size_bytes` (at least the header).
    pub fn buffer(size_bytes: usize) -> Vec<u8> {
        vec![0; message_bytes(size_bytes)]
    }
}
