//! The replicated checkpoint store: checkpoints, their sections and data,
//! the name table, the indices the engine keeps over them, and the
//! canonical encoding the digests are computed over.
//!
//! What is replicated and what is local: everything in a [`Checkpoint`] is
//! the same on every replica of a configuration (it changes only by ring
//! messages applied in total order, or by the sync), except a section's
//! [`Local`] state, which says whether *this* node holds the section's
//! bytes. A replica that could not apply a change (its memory limit) keeps
//! the section's metadata (size, expiration, last update), which every
//! replica computes alike, and drops the bytes.
//!
//! Memory: `local_bytes` counts what this node holds (valid section data
//! plus section ids); it is checked against the node's memory limit before
//! anything is applied. `data_bytes` counts section sizes over the whole
//! store (the same on every replica) and is checked against
//! [`super::MAX_TOTAL_DATA_BYTES`].

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::{Bytes, BytesMut};
use proto::ckpt::{CheckpointKey, CreationAttributes};
use proto::Encoder;
use totem::NodeId;

use super::replication::{Decision, Queued};

/// A checkpoint's identity: where the open that created it was ordered.
pub(crate) type CkptId = CheckpointKey;

/// What this node holds of a section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Local {
    /// The bytes, `size` long. Shared, never mutated in place while
    /// shared: a backup snapshot holds clones of them (copy on write, see
    /// [`Store::write_local`]).
    Valid(Bytes),
    /// Lost; a full copy was asked of the recovery source.
    Recovering,
    /// Lost, and the last recovery failed.
    Corrupted,
}

impl Local {
    /// Whether the bytes are here.
    pub(crate) fn is_valid(&self) -> bool {
        matches!(self, Local::Valid(_))
    }
}

/// A section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Section {
    /// Absolute expiration (ns since the epoch; `TIME_END`: never).
    pub expiration_ns: i64,
    /// Bytes of data (replicated: known even where the bytes are lost).
    pub size: u64,
    /// Wall time of the last change, by the writer's executive.
    pub last_update_ns: i64,
    /// The checkpoint's version right after the last change of the data.
    pub modified: u64,
    /// This node's bytes.
    pub local: Local,
}

impl Section {
    /// Bytes this section costs this node (id plus data when held).
    pub(crate) fn local_cost(&self, id: &[u8]) -> u64 {
        match &self.local {
            Local::Valid(d) => (id.len() + d.len()) as u64,
            _ => 0,
        }
    }
}

/// A checkpoint.
#[derive(Debug)]
pub(crate) struct Checkpoint {
    /// Its name (still held after an unlink, for listings).
    pub name: Bytes,
    /// Whether the name refers to it (false once unlinked).
    pub linked: bool,
    /// Creation attributes; `retention_duration_ns` is the current one.
    pub attrs: CreationAttributes,
    /// The node holding the active replica (ACTIVE_REPLICA modes).
    pub active: Option<NodeId>,
    /// Changes applied (the merge rule prefers the copy with more).
    pub version: u64,
    /// Decisions started in this configuration (names votes together
    /// with the ring; restarts at every sync, so it is no part of a copy's
    /// content and a rejected change leaves no trace).
    pub decision_seq: u64,
    /// Bumped whenever the retention clock restarts or stops; an EXPIRE
    /// names the epoch it was timed for.
    pub zero_epoch: u64,
    /// Counter for generated section ids.
    pub generated: u64,
    /// Opens per node.
    pub openers: BTreeMap<NodeId, u32>,
    /// Sections by id (the default section has the empty id).
    pub sections: BTreeMap<Bytes, Section>,
    /// Sum of section sizes.
    pub data_bytes: u64,
    /// The change waiting for votes, if any: every later operation on
    /// this checkpoint waits in `queue` until it is decided.
    pub decision: Option<Decision>,
    /// Operations delivered while a decision was pending, in order.
    pub queue: VecDeque<Queued>,
}

impl Checkpoint {
    /// A new checkpoint with no sections.
    pub(crate) fn new(name: Bytes, attrs: CreationAttributes) -> Checkpoint {
        Checkpoint {
            name,
            linked: true,
            attrs,
            active: None,
            version: 0,
            decision_seq: 0,
            zero_epoch: 0,
            generated: 0,
            openers: BTreeMap::new(),
            sections: BTreeMap::new(),
            data_bytes: 0,
            decision: None,
            queue: VecDeque::new(),
        }
    }

    /// Opens over the cluster.
    pub(crate) fn open_count(&self) -> u64 {
        self.openers.values().map(|&c| u64::from(c)).sum()
    }

    /// Whether operations on it must wait (a decision is pending or
    /// earlier operations wait already).
    pub(crate) fn blocked(&self) -> bool {
        self.decision.is_some() || !self.queue.is_empty()
    }

    /// Whether this node holds every section's bytes.
    pub(crate) fn intact(&self) -> bool {
        self.sections.values().all(|s| s.local.is_valid())
    }

    /// Feeds the canonical encoding of what the sync carries to `sink`, in
    /// pieces (everything but the openers, which the sync rebuilds, and
    /// the transient decision and queue). Section data is fed as it is,
    /// never copied.
    pub(crate) fn feed_content(&self, sink: &mut dyn FnMut(&[u8])) {
        let mut enc = Encoder::new();
        enc.put_len_prefixed(&self.name).put_bool(self.linked);
        self.attrs.encode_into(&mut enc);
        enc.put_u32(self.active.map_or(0, NodeId::get))
            .put_u64(self.version)
            .put_u64(self.zero_epoch)
            .put_u64(self.generated)
            .put_count(self.sections.len());
        sink(&enc.finish());
        for (id, s) in &self.sections {
            let mut enc = Encoder::new();
            enc.put_len_prefixed(id)
                .put_i64(s.expiration_ns)
                .put_u64(s.size)
                .put_i64(s.last_update_ns)
                .put_u64(s.modified);
            match &s.local {
                Local::Valid(d) => {
                    enc.put_bool(true).put_count(d.len());
                    sink(&enc.finish());
                    sink(d);
                }
                _ => {
                    enc.put_bool(false);
                    sink(&enc.finish());
                }
            }
        }
    }

    /// A 64-bit digest of [`Checkpoint::feed_content`]: equal digests mean
    /// equal copies, for the sync's comparison.
    pub(crate) fn content_digest(&self) -> u64 {
        let mut h = Fnv64::new();
        self.feed_content(&mut |b| h.update(b));
        h.finish()
    }
}

/// The store.
#[derive(Debug, Default)]
pub(crate) struct Store {
    /// Every checkpoint, linked or not.
    pub ckpts: BTreeMap<CkptId, Checkpoint>,
    /// Linked names.
    pub names: BTreeMap<Bytes, CkptId>,
    /// Sum of section sizes over all checkpoints.
    pub data_bytes: u64,
    /// What this node holds (valid data and ids).
    pub local_bytes: u64,
    /// Sections that expire: (expiration, checkpoint, section).
    pub expiry: BTreeSet<(i64, CkptId, Bytes)>,
    /// Bytes of operations waiting in checkpoint queues.
    pub queued_bytes: u64,
}

impl Store {
    /// Number of sections over all checkpoints.
    pub(crate) fn section_count(&self) -> u64 {
        self.ckpts.values().map(|c| c.sections.len() as u64).sum()
    }

    /// Adds a checkpoint (its sections must be empty; add them with
    /// [`Store::insert_section`]).
    pub(crate) fn insert_ckpt(&mut self, id: CkptId, c: Checkpoint) {
        debug_assert!(c.sections.is_empty());
        if c.linked {
            self.names.insert(c.name.clone(), id);
        }
        self.ckpts.insert(id, c);
    }

    /// Removes a checkpoint with everything it holds.
    pub(crate) fn remove_ckpt(&mut self, id: CkptId) -> Option<Checkpoint> {
        let ids: Vec<Bytes> = self.ckpts.get(&id)?.sections.keys().cloned().collect();
        for s in ids {
            self.remove_section(id, &s);
        }
        let c = self.ckpts.remove(&id)?;
        if c.linked && self.names.get(&c.name) == Some(&id) {
            self.names.remove(&c.name);
        }
        for q in &c.queue {
            self.queued_bytes = self.queued_bytes.saturating_sub(q.bytes);
        }
        Some(c)
    }

    /// Removes the name of `id` (it lives on, unlinked).
    pub(crate) fn unlink(&mut self, id: CkptId) {
        if let Some(c) = self.ckpts.get_mut(&id) {
            if c.linked && self.names.get(&c.name) == Some(&id) {
                self.names.remove(&c.name);
            }
            c.linked = false;
        }
    }

    /// Adds (or replaces) a section, keeping every index.
    pub(crate) fn insert_section(&mut self, ckpt: CkptId, id: Bytes, s: Section) {
        self.remove_section(ckpt, &id);
        let Some(c) = self.ckpts.get_mut(&ckpt) else {
            return;
        };
        self.data_bytes += s.size;
        c.data_bytes += s.size;
        self.local_bytes += s.local_cost(&id);
        if s.expiration_ns != proto::ckpt::TIME_END {
            self.expiry.insert((s.expiration_ns, ckpt, id.clone()));
        }
        c.sections.insert(id, s);
    }

    /// Removes a section, keeping every index.
    pub(crate) fn remove_section(&mut self, ckpt: CkptId, id: &Bytes) -> Option<Section> {
        let c = self.ckpts.get_mut(&ckpt)?;
        let s = c.sections.remove(id)?;
        self.data_bytes = self.data_bytes.saturating_sub(s.size);
        c.data_bytes = c.data_bytes.saturating_sub(s.size);
        self.local_bytes = self.local_bytes.saturating_sub(s.local_cost(id));
        self.expiry.remove(&(s.expiration_ns, ckpt, id.clone()));
        Some(s)
    }

    /// Changes a section's expiration time.
    pub(crate) fn set_expiration(&mut self, ckpt: CkptId, id: &Bytes, exp: i64) {
        let Some(s) = self
            .ckpts
            .get_mut(&ckpt)
            .and_then(|c| c.sections.get_mut(id))
        else {
            return;
        };
        self.expiry.remove(&(s.expiration_ns, ckpt, id.clone()));
        s.expiration_ns = exp;
        if exp != proto::ckpt::TIME_END {
            self.expiry.insert((exp, ckpt, id.clone()));
        }
    }

    /// Sets a section's size (metadata), keeping the totals.
    pub(crate) fn set_size(&mut self, ckpt: CkptId, id: &Bytes, size: u64) {
        let Some(c) = self.ckpts.get_mut(&ckpt) else {
            return;
        };
        let Some(s) = c.sections.get_mut(id) else {
            return;
        };
        self.data_bytes = self.data_bytes - s.size + size;
        c.data_bytes = c.data_bytes - s.size + size;
        s.size = size;
    }

    /// Replaces this node's state of a section, keeping `local_bytes`.
    pub(crate) fn set_local(&mut self, ckpt: CkptId, id: &Bytes, local: Local) {
        let Some(s) = self
            .ckpts
            .get_mut(&ckpt)
            .and_then(|c| c.sections.get_mut(id))
        else {
            return;
        };
        self.local_bytes = self.local_bytes.saturating_sub(s.local_cost(id));
        s.local = local;
        self.local_bytes += s.local_cost(id);
    }

    /// Feeds the canonical encoding of the whole replicated store to
    /// `sink`: every checkpoint in id order, its content and its openers.
    pub(crate) fn feed_canonical(&self, sink: &mut dyn FnMut(&[u8])) {
        let mut enc = Encoder::new();
        enc.put_count(self.ckpts.len());
        sink(&enc.finish());
        for (id, c) in &self.ckpts {
            let mut enc = Encoder::new();
            id.encode_into(&mut enc);
            sink(&enc.finish());
            c.feed_content(sink);
            let mut enc = Encoder::new();
            enc.put_count(c.openers.len());
            for (n, count) in &c.openers {
                enc.put_u32(n.get()).put_u32(*count);
            }
            sink(&enc.finish());
        }
    }

    /// CRC-32 over [`Store::feed_canonical`]: equal on every node whose
    /// replica is identical.
    pub(crate) fn digest(&self) -> u32 {
        let mut crc = Crc32::new();
        self.feed_canonical(&mut |b| crc.update(b));
        crc.finish()
    }

    /// Writes `data` at `offset` of this node's bytes of a section (which
    /// must be valid), growing them; keeps `local_bytes`.
    pub(crate) fn write_local(&mut self, ckpt: CkptId, id: &Bytes, offset: u64, data: &[u8]) {
        let Some(s) = self
            .ckpts
            .get_mut(&ckpt)
            .and_then(|c| c.sections.get_mut(id))
        else {
            return;
        };
        let Local::Valid(v) = &mut s.local else {
            return;
        };
        let Some(start) = usize::try_from(offset).ok() else {
            return;
        };
        let end = start + data.len();
        let before = v.len();
        // Copy on write: in place when this store holds the only reference,
        // a fresh copy when a backup snapshot still shares the old bytes
        // (the snapshot must keep seeing the state at its cut).
        let mut m = match std::mem::take(v).try_into_mut() {
            Ok(m) => m,
            Err(shared) => BytesMut::from(&shared[..]),
        };
        if m.len() < end {
            m.resize(end, 0);
        }
        m[start..end].copy_from_slice(data);
        *v = m.freeze();
        self.local_bytes += (v.len() - before) as u64;
    }
}

/// CRC-32 (IEEE 802.3, reflected, as zlib and crc32fast compute it),
/// incremental.
#[derive(Debug)]
pub(crate) struct Crc32(u32);

const fn crc_table() -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
}

const CRC_TABLE: [u32; 256] = crc_table();

impl Crc32 {
    pub(crate) fn new() -> Crc32 {
        Crc32(!0)
    }

    pub(crate) fn update(&mut self, data: &[u8]) {
        let mut crc = self.0;
        for &b in data {
            crc = CRC_TABLE[((crc ^ u32::from(b)) & 0xFF) as usize] ^ (crc >> 8);
        }
        self.0 = crc;
    }

    pub(crate) fn finish(&self) -> u32 {
        !self.0
    }
}

/// FNV-1a, 64 bits, incremental.
#[derive(Debug)]
pub(crate) struct Fnv64(u64);

impl Fnv64 {
    pub(crate) fn new() -> Fnv64 {
        Fnv64(0xcbf2_9ce4_8422_2325)
    }

    pub(crate) fn update(&mut self, data: &[u8]) {
        for &b in data {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    pub(crate) fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u64) -> CkptId {
        CkptId {
            ring_seq: 4,
            ring_rep: 1,
            index: i,
        }
    }

    fn attrs() -> CreationAttributes {
        CreationAttributes {
            creation_flags: proto::ckpt::WR_ALL_REPLICAS,
            checkpoint_size: 1000,
            retention_duration_ns: 0,
            max_sections: 10,
            max_section_size: 100,
            max_section_id_size: 10,
        }
    }

    #[test]
    fn crc32_matches_the_standard_check_value() {
        let mut c = Crc32::new();
        c.update(b"1234");
        c.update(b"56789");
        assert_eq!(c.finish(), 0xCBF4_3926);
        assert_eq!(Crc32::new().finish(), 0);
    }

    #[test]
    fn indices_follow_inserts_and_removals() {
        let mut st = Store::default();
        st.insert_ckpt(key(1), Checkpoint::new(Bytes::from_static(b"a"), attrs()));
        let s = Section {
            expiration_ns: 50,
            size: 3,
            last_update_ns: 0,
            modified: 0,
            local: Local::Valid(Bytes::from_static(&[1, 2, 3])),
        };
        st.insert_section(key(1), Bytes::from_static(b"s"), s);
        assert_eq!((st.data_bytes, st.local_bytes, st.expiry.len()), (3, 4, 1));
        st.set_local(key(1), &Bytes::from_static(b"s"), Local::Corrupted);
        assert_eq!((st.data_bytes, st.local_bytes), (3, 0));
        st.set_expiration(key(1), &Bytes::from_static(b"s"), proto::ckpt::TIME_END);
        assert!(st.expiry.is_empty());
        let d = st.digest();
        st.unlink(key(1));
        assert!(st.names.is_empty());
        assert_ne!(st.digest(), d, "the link state is replicated");
        st.remove_ckpt(key(1));
        assert_eq!((st.data_bytes, st.local_bytes, st.ckpts.len()), (0, 0, 0));
    }
}
