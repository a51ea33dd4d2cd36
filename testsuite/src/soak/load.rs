//! The soak's load: EVS clients that multicast numbered messages to one
//! group and log every delivery and configuration change
//! ([`super::log`]), and CKPT writers that keep writing through libais to
//! an ALL_REPLICAS and a collocated ACTIVE_REPLICA checkpoint. Each is a
//! thread of the soak driver talking to one node's IPC socket; when its
//! node goes away it ends its session and reconnects once the node is
//! back.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ais::ckpt::{Checkpoint, Ckpt};
use ais::client::ClientConfig;
use ais::evs::{Evs, EvsCallback, EvsError};
use proto::ckpt::{
    CreationAttributes, CHECKPOINT_COLLOCATED, OPEN_CREATE, OPEN_READ, OPEN_WRITE, TIME_END,
    WR_ACTIVE_REPLICA, WR_ALL_REPLICAS,
};
use proto::evs::{EvsGuarantee, Group};
use proto::AisError;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::log::{ConfId, Event, MsgId, SessionId, SessionWriter};

/// The group every EVS client joins.
pub const GROUP: &str = "soak";
/// The ALL_REPLICAS checkpoint.
pub const CKPT_ALL: &[u8] = b"soak-all-replicas";
/// The collocated ACTIVE_REPLICA checkpoint.
pub const CKPT_ACTIVE: &[u8] = b"soak-active-replica";
/// How long a client call waits before the session is given up.
const CALL_TIMEOUT: Duration = Duration::from_secs(3);
/// Bytes of a message's header.
const HEADER_BYTES: usize = 16;
/// The header's first bytes.
const MAGIC: [u8; 2] = *b"SK";

/// Flags and counters shared by the driver and the load threads.
#[derive(Debug, Default)]
pub struct Shared {
    /// Everything stops (EVS sessions end clean).
    pub stop: AtomicBool,
    /// EVS clients multicast (cleared for the final drain).
    pub sending: AtomicBool,
    /// CKPT writers write.
    pub writing: AtomicBool,
    /// Accepted own messages not yet delivered back, over the live
    /// sessions.
    pub outstanding: AtomicUsize,
    /// Milliseconds since `epoch` of the last delivery anywhere.
    pub last_delivery_ms: AtomicU64,
    /// Multicasts accepted.
    pub accepted: AtomicU64,
    /// Deliveries.
    pub delivered: AtomicU64,
    /// Sessions started.
    pub sessions: AtomicU64,
    /// CKPT writes that succeeded.
    pub ckpt_ok: AtomicU64,
    /// CKPT calls that failed (any error: TRY_AGAIN, a broken connection, ...).
    pub ckpt_failed: AtomicU64,
    /// The last CKPT error, for the summary.
    pub ckpt_last_error: std::sync::Mutex<String>,
    /// When the load started.
    pub epoch: std::sync::OnceLock<Instant>,
}

impl Shared {
    fn now_ms(&self) -> u64 {
        let e = self.epoch.get_or_init(Instant::now);
        u64::try_from(e.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Milliseconds since the last delivery.
    pub fn quiet_ms(&self) -> u64 {
        self.now_ms()
            .saturating_sub(self.last_delivery_ms.load(Ordering::Relaxed))
    }
}

/// One EVS client.
#[derive(Debug, Clone)]
pub struct EvsClient {
    /// Its node.
    pub node: u8,
    /// Its number on the node.
    pub client: u8,
    /// The node's IPC socket.
    pub socket: PathBuf,
    /// Where the session logs go.
    pub log_dir: PathBuf,
    /// Messages per second it sends.
    pub rate: u32,
    /// Seed of its sizes and guarantees.
    pub seed: u64,
}

/// The payload of message `id` with `len` bytes (at least the header).
pub fn payload(id: MsgId, len: usize) -> Vec<u8> {
    let len = len.max(HEADER_BYTES);
    let mut p = Vec::with_capacity(len);
    p.extend_from_slice(&MAGIC);
    p.push(id.node);
    p.push(id.client);
    p.extend_from_slice(&id.session.to_le_bytes());
    p.extend_from_slice(&id.seq.to_le_bytes());
    p.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_le_bytes());
    p.extend_from_slice(&[0, 0]);
    for i in HEADER_BYTES..len {
        p.push(filler(id, i));
    }
    p
}

fn filler(id: MsgId, i: usize) -> u8 {
    // Truncation is the point: a position- and message-dependent byte.
    #[allow(clippy::cast_possible_truncation)]
    let b = (id.seq as usize)
        .wrapping_mul(7)
        .wrapping_add(i.wrapping_mul(13)) as u8;
    b ^ id.node
}

/// The message a payload carries, or what is wrong with it.
///
/// # Errors
/// A short payload, a bad magic, a length that disagrees, a filler byte
/// that differs.
pub fn parse_payload(p: &[u8]) -> Result<MsgId, String> {
    if p.len() < HEADER_BYTES || p[..2] != MAGIC {
        return Err(format!("{} bytes without the header", p.len()));
    }
    let id = MsgId {
        node: p[2],
        client: p[3],
        session: u16::from_le_bytes([p[4], p[5]]),
        seq: u32::from_le_bytes([p[6], p[7], p[8], p[9]]),
    };
    let len = u32::from_le_bytes([p[10], p[11], p[12], p[13]]) as usize;
    if len != p.len() {
        return Err(format!("{id}: {} bytes, header says {len}", p.len()));
    }
    if let Some(i) = (HEADER_BYTES..len).find(|&i| p[i] != filler(id, i)) {
        return Err(format!("{id}: byte {i} differs"));
    }
    Ok(id)
}

impl EvsClient {
    /// Runs sessions until `shared.stop`.
    pub fn run(self, shared: &Shared) {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let mut session: u16 = 0;
        while !shared.stop.load(Ordering::Relaxed) {
            let mut config = ClientConfig::with_socket(&self.socket);
            config.timeout = CALL_TIMEOUT;
            config.max_callback_frames = 1 << 20;
            config.max_callback_bytes = 1 << 30;
            let Ok(evs) = Evs::connect_with(&config) else {
                std::thread::sleep(Duration::from_millis(100));
                continue;
            };
            session = session.wrapping_add(1);
            shared.sessions.fetch_add(1, Ordering::Relaxed);
            let id = SessionId {
                node: self.node,
                client: self.client,
                session,
            };
            let Ok(mut log) = SessionWriter::create(&self.log_dir, id) else {
                return;
            };
            let (clean, why) = self.session(evs, id, &mut log, &mut rng, shared);
            log.end(clean, &why);
        }
    }

    /// One session; returns how it ended.
    fn session(
        &self,
        mut evs: Evs,
        id: SessionId,
        log: &mut SessionWriter,
        rng: &mut ChaCha8Rng,
        shared: &Shared,
    ) -> (bool, String) {
        let mut pending: HashSet<u32> = HashSet::new();
        let result = self.session_loop(&mut evs, id, log, rng, shared, &mut pending);
        shared
            .outstanding
            .fetch_sub(pending.len(), Ordering::Relaxed);
        match result {
            Ok(()) => (true, "soak over".to_owned()),
            Err(why) => (false, why),
        }
    }

    fn session_loop(
        &self,
        evs: &mut Evs,
        id: SessionId,
        log: &mut SessionWriter,
        rng: &mut ChaCha8Rng,
        shared: &Shared,
        pending: &mut HashSet<u32>,
    ) -> Result<(), String> {
        // Callbacks taken before the join returns are not live.
        self.drain(evs, id, log, shared, pending)?;
        evs.join(&[Group::named(GROUP)])
            .map_err(|e| format!("join: {e}"))?;
        self.drain(evs, id, log, shared, pending)?;
        log.log(&Event::Joined);
        let interval = Duration::from_secs(1) / self.rate.max(1);
        let mut next_send = Instant::now();
        let mut seq: u32 = 1;
        loop {
            if shared.stop.load(Ordering::Relaxed) {
                return self.drain(evs, id, log, shared, pending).map(|_| ());
            }
            let now = Instant::now();
            if shared.sending.load(Ordering::Relaxed) && now >= next_send {
                next_send = if now > next_send + Duration::from_secs(1) {
                    now + interval
                } else {
                    next_send + interval
                };
                let m = MsgId {
                    node: id.node,
                    client: id.client,
                    session: id.session,
                    seq,
                };
                let size = match rng.random_range(0..100) {
                    0..85 => rng.random_range(HEADER_BYTES..400),
                    85..98 => rng.random_range(400..4_000),
                    _ => rng.random_range(10_000..60_000),
                };
                let guarantee = if rng.random_range(0..10) == 0 {
                    EvsGuarantee::Safe
                } else {
                    EvsGuarantee::Agreed
                };
                log.log(&Event::Attempt(seq));
                match evs.mcast_joined(guarantee, &[&payload(m, size)]) {
                    Ok(()) => {
                        log.log(&Event::Accepted(seq));
                        pending.insert(seq);
                        shared.outstanding.fetch_add(1, Ordering::Relaxed);
                        shared.accepted.fetch_add(1, Ordering::Relaxed);
                        seq += 1;
                    }
                    Err(EvsError::Ais(AisError::TryAgain)) => {
                        log.log(&Event::Refused(seq));
                        next_send = now + Duration::from_millis(20);
                    }
                    Err(e) => {
                        log.log(&Event::Failed(seq));
                        return Err(format!("mcast: {e}"));
                    }
                }
            }
            let got = self.drain(evs, id, log, shared, pending)?;
            if !got {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }

    /// Takes every callback waiting; `Ok(true)` if there was one.
    fn drain(
        &self,
        evs: &mut Evs,
        id: SessionId,
        log: &mut SessionWriter,
        shared: &Shared,
        pending: &mut HashSet<u32>,
    ) -> Result<bool, String> {
        let mut any = false;
        loop {
            match evs.next_callback(false) {
                Ok(None) => return Ok(any),
                Ok(Some(EvsCallback::Deliver(d))) => {
                    any = true;
                    shared.delivered.fetch_add(1, Ordering::Relaxed);
                    shared
                        .last_delivery_ms
                        .store(shared.now_ms(), Ordering::Relaxed);
                    match parse_payload(&d.msg) {
                        Ok(m) if u32::from(m.node) == d.node_id => {
                            if m.sender() == id && pending.remove(&m.seq) {
                                shared.outstanding.fetch_sub(1, Ordering::Relaxed);
                            }
                            log.log(&Event::Deliver(m));
                        }
                        Ok(m) => log.log(&Event::Corrupt(format!(
                            "{m} delivered as sent by node {}",
                            d.node_id
                        ))),
                        Err(e) => log.log(&Event::Corrupt(e)),
                    }
                }
                Ok(Some(EvsCallback::ConfChg(c))) => {
                    any = true;
                    log.log(&Event::Conf {
                        id: ConfId {
                            seq: c.ring.seq,
                            rep: c.ring.rep,
                            transitional: c.ring.transitional,
                        },
                        members: c.members,
                    });
                }
                Err(e) => return Err(format!("callback: {e}")),
            }
        }
    }
}

/// One CKPT writer on one node.
#[derive(Debug, Clone)]
pub struct CkptWriter {
    /// Its node.
    pub node: u8,
    /// The node's IPC socket.
    pub socket: PathBuf,
    /// Seed of its sizes.
    pub seed: u64,
}

/// Attributes of the soak's checkpoints.
pub fn attributes(flags: u32) -> CreationAttributes {
    CreationAttributes {
        creation_flags: flags,
        checkpoint_size: 64 * 8_192,
        retention_duration_ns: TIME_END,
        max_sections: 64,
        max_section_size: 8_192,
        max_section_id_size: 32,
    }
}

/// The section of node `node`.
pub fn section_of(node: u8) -> Vec<u8> {
    format!("node-{node}").into_bytes()
}

impl CkptWriter {
    /// Writes until `shared.stop`.
    pub fn run(self, shared: &Shared) {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let mut count: u64 = 0;
        while !shared.stop.load(Ordering::Relaxed) {
            if !shared.writing.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            let mut config = ClientConfig::with_socket(&self.socket);
            config.timeout = CALL_TIMEOUT;
            let Ok(mut ckpt) = Ckpt::connect_with(&config) else {
                std::thread::sleep(Duration::from_millis(100));
                continue;
            };
            if let Err(e) = self.session(&mut ckpt, &mut rng, &mut count, shared) {
                shared.ckpt_failed.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut last) = shared.ckpt_last_error.lock() {
                    *last = format!("node {}: {e}", self.node);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    fn open(&self, ckpt: &mut Ckpt, name: &[u8], flags: u32) -> Result<Checkpoint, String> {
        let c = ckpt
            .open(
                name,
                Some(attributes(flags)),
                OPEN_CREATE | OPEN_READ | OPEN_WRITE,
                Some(CALL_TIMEOUT),
            )
            .map_err(|e| format!("open: {e}"))?;
        if flags & WR_ACTIVE_REPLICA != 0 {
            // A collocated checkpoint has no active replica until one is
            // set (its sections do not exist for writers till then).
            ckpt.active_replica_set(&c)
                .map_err(|e| format!("active replica set: {e}"))?;
        }
        for section in [section_of(self.node), b"shared".to_vec()] {
            match ckpt.section_create(&c, &section, TIME_END, b"new") {
                Ok(_) | Err(AisError::Exist) => {}
                Err(e) => return Err(format!("section create: {e}")),
            }
        }
        Ok(c)
    }

    /// One connection: opens both checkpoints, then writes until told to
    /// stop or a call fails.
    fn session(
        &self,
        ckpt: &mut Ckpt,
        rng: &mut ChaCha8Rng,
        count: &mut u64,
        shared: &Shared,
    ) -> Result<(), String> {
        let all = self.open(ckpt, CKPT_ALL, WR_ALL_REPLICAS)?;
        let active = self.open(ckpt, CKPT_ACTIVE, WR_ACTIVE_REPLICA | CHECKPOINT_COLLOCATED)?;
        while shared.writing.load(Ordering::Relaxed) && !shared.stop.load(Ordering::Relaxed) {
            *count += 1;
            let len = rng.random_range(16..2_000);
            let mut data = format!("node {} write {} ", self.node, *count).into_bytes();
            data.resize(len, b'a' + (*count % 26) as u8);
            let target = if rng.random_range(0..3) == 0 {
                &active
            } else {
                &all
            };
            if target == &active && rng.random_range(0..10) == 0 {
                // Moves the active replica here.
                self.count(
                    shared,
                    "active replica set",
                    ckpt.active_replica_set(&active),
                )?;
            }
            let section = if rng.random_range(0..4) == 0 {
                b"shared".to_vec()
            } else {
                section_of(self.node)
            };
            let r = if rng.random_range(0..2) == 0 {
                ckpt.overwrite(target, &section, &data)
            } else {
                let offset = rng.random_range(0..4_000);
                ckpt.write(
                    target,
                    &[ais::ckpt::WriteElement {
                        section_id: &section,
                        offset,
                        data: &data,
                    }],
                )
                .map_err(|e| e.error)
            };
            let op = if target == &active {
                "write (active replica)"
            } else {
                "write (all replicas)"
            };
            self.count(shared, op, r)?;
            std::thread::sleep(Duration::from_millis(rng.random_range(20..120)));
        }
        Ok(())
    }

    /// Counts an outcome; an error that means the connection is gone ends
    /// the session.
    fn count(&self, shared: &Shared, op: &str, r: Result<(), AisError>) -> Result<(), String> {
        match r {
            Ok(()) => {
                shared.ckpt_ok.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(e @ (AisError::Library | AisError::BadHandle | AisError::Timeout)) => {
                Err(format!("{op}: {e}"))
            }
            Err(e) => {
                shared.ckpt_failed.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut last) = shared.ckpt_last_error.lock() {
                    *last = format!("node {} {op}: {e}", self.node);
                }
                Ok(())
            }
        }
    }
}

/// Runs `f` on a named thread.
///
/// # Panics
/// If the thread cannot be spawned.
pub fn spawn(name: String, f: impl FnOnce() + Send + 'static) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .name(name)
        .spawn(f)
        .expect("thread spawned")
}

/// Keeps `Arc<Shared>` cloning short at the call sites.
pub fn shared() -> Arc<Shared> {
    Arc::new(Shared::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_and_damage_is_seen() {
        let id = MsgId {
            node: 4,
            client: 2,
            session: 300,
            seq: 70_000,
        };
        for len in [0, 16, 17, 1000, 60_000] {
            let p = payload(id, len);
            assert_eq!(p.len(), len.max(HEADER_BYTES));
            assert_eq!(parse_payload(&p), Ok(id));
        }
        let mut p = payload(id, 100);
        p[50] ^= 1;
        assert!(parse_payload(&p).is_err());
        let p = payload(id, 100);
        assert!(parse_payload(&p[..99]).is_err());
        assert!(parse_payload(b"hello").is_err());
    }
}
