//! CKPT's executive messages: what its engines multicast to each other
//! through the ring (after the [`crate::ExecHeader`]).
//!
//! | id | message | sent by |
//! |---|---|---|
//! | 0 | [`RingOp`]: a client operation with its origin (connection, request tag, wall time) | the client's node; also closes for a departed connection, recovery requests |
//! | 1 | [`Vote`]: a replica's outcome of a pending change | every voter of the change |
//! | 2 | [`Copy`]: a full copy of a section | the recovery source |
//! | 3 | [`Expire`]: delete what expired by this time | the lowest member |
//! | 4 | [`Summary`]: what a member holds, in the sync | every member |
//! | 5 | [`StateCkpt`] and 6 [`StateSection`]: a checkpoint's winning copy | its sender in the sync |
//!
//! Everything here comes from peers: decoders are bounds-checked, never
//! panic, and never allocate by an unchecked length.

use bytes::Bytes;
use proto::ckpt::{CreationAttributes, ReadElement, WriteElement, MAX_IO_ELEMENTS};
use proto::{status_code, DecodeError, Decoder, Encoder, Status};
use totem::{NodeId, RingId};

use super::store::CkptId;
use super::{MAX_EXPIRE_CKPTS, MAX_HANDLES_PER_CONN, SUMMARY_ENTRIES_PER_MSG};

/// Message id: [`RingOp`].
pub(crate) const EX_OP: u16 = 0;
/// Message id: [`Vote`].
pub(crate) const EX_VOTE: u16 = 1;
/// Message id: [`Copy`].
pub(crate) const EX_COPY: u16 = 2;
/// Message id: [`Expire`].
pub(crate) const EX_EXPIRE: u16 = 3;
/// Message id: [`Summary`].
pub(crate) const EX_SUMMARY: u16 = 4;
/// Message id: [`StateCkpt`].
pub(crate) const EX_STATE_CKPT: u16 = 5;
/// Message id: [`StateSection`].
pub(crate) const EX_STATE_SECTION: u16 = 6;

/// Most bytes in a name, a section id or data on the ring.
const MAX_NAME: usize = proto::ckpt::MAX_NAME_BYTES;
const MAX_ID: usize = proto::ckpt::MAX_SECTION_ID_BYTES;
const MAX_DATA: usize = proto::ckpt::MAX_DATA_BYTES;
/// Bytes of an encoded [`CkptId`].
const CKPT_ID_BYTES: usize = 20;

/// Who asked for an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Origin {
    /// The node the client is on (the message's sender).
    pub node: NodeId,
    /// The client connection there (0: none).
    pub conn: u64,
    /// The request tag there (0: nobody waits for an answer).
    pub tag: u64,
    /// The origin's wall clock when it sent the request (ns since the
    /// epoch): a section's `lastUpdate`.
    pub wall_ns: i64,
}

/// An operation, as every replica applies it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    /// Open (and maybe create) by name.
    Open {
        name: Bytes,
        attrs: Option<CreationAttributes>,
        flags: u32,
    },
    /// Close one open of each listed checkpoint (a departed connection
    /// closes all of its opens in one message).
    Close { ckpts: Vec<CkptId> },
    /// Unlink by name.
    Unlink { name: Bytes },
    /// Set the retention duration.
    RetentionSet { ckpt: CkptId, ns: i64 },
    /// Make the origin node the active replica.
    ActiveSet { ckpt: CkptId },
    /// Create a section (empty id: generate one).
    SectionCreate {
        ckpt: CkptId,
        id: Bytes,
        exp: i64,
        data: Bytes,
    },
    /// Delete a section.
    SectionDelete { ckpt: CkptId, id: Bytes },
    /// Set a section's expiration time.
    ExpirationSet { ckpt: CkptId, id: Bytes, exp: i64 },
    /// Write elements, all or none.
    Write {
        ckpt: CkptId,
        elements: Vec<WriteElement>,
    },
    /// Replace a section's data.
    Overwrite {
        ckpt: CkptId,
        id: Bytes,
        data: Bytes,
    },
    /// Read (answered by the origin from its replica, in order).
    Read {
        ckpt: CkptId,
        elements: Vec<ReadElement>,
    },
    /// Wait until every earlier change is applied (answered in order).
    Synchronize { ckpt: CkptId },
    /// The origin lost a section's bytes: the recovery source multicasts
    /// a [`Copy`].
    Recover { ckpt: CkptId, id: Bytes },
    /// Delete the checkpoint's sections expiring at or before `wall_ns`
    /// (an [`Expire`] that found the checkpoint waiting on a change queues
    /// this behind it).
    ExpireSections { ckpt: CkptId, wall_ns: i64 },
}

/// [`EX_OP`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RingOp {
    /// Connection at the origin.
    pub conn: u64,
    /// Request tag at the origin.
    pub tag: u64,
    /// The origin's wall clock (ns since the epoch).
    pub wall_ns: i64,
    /// The operation.
    pub op: Op,
}

/// [`EX_VOTE`]: a voter's outcome of the change `(ckpt, ring, seq)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Vote {
    pub ckpt: CkptId,
    pub ring: RingId,
    pub seq: u64,
    /// OK: this voter can apply (and reserved the bytes); an error: it
    /// cannot, and the change fails with that error.
    pub status: Status,
}

/// [`EX_COPY`]: a section as the recovery source held it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Copy {
    /// The configuration it was made in (copies from an earlier one are
    /// ignored: the sync replaced what they describe).
    pub ring: RingId,
    pub ckpt: CkptId,
    pub id: Bytes,
    /// The checkpoint's version when the copy was made.
    pub as_of: u64,
    /// OK with the data; NOT_EXIST or FAILED_OPERATION without.
    pub status: Status,
    pub data: Bytes,
}

/// [`EX_EXPIRE`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Expire {
    /// Sections expiring at or before this wall time go.
    pub wall_ns: i64,
    /// Checkpoints whose retention ran out, with the epoch it was timed
    /// for (a reopen since bumped it, and the entry is void).
    pub ckpts: Vec<(CkptId, u64)>,
}

/// One checkpoint in a [`Summary`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SummaryEntry {
    pub ckpt: CkptId,
    pub version: u64,
    /// [`super::store::Checkpoint::content_digest`].
    pub digest: u64,
    /// Whether the sender holds every section's bytes.
    pub intact: bool,
    /// Opens of this checkpoint on the sender's node.
    pub openers: u32,
}

/// [`EX_SUMMARY`]: one chunk of what a member holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Summary {
    pub ring: RingId,
    pub chunk: u32,
    pub last: bool,
    pub entries: Vec<SummaryEntry>,
}

/// What a [`StateCkpt`] carries of a checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CkptMeta {
    pub name: Bytes,
    pub linked: bool,
    pub attrs: CreationAttributes,
    pub active: Option<NodeId>,
    pub version: u64,
    pub decision_seq: u64,
    pub zero_epoch: u64,
    pub generated: u64,
}

/// [`EX_STATE_CKPT`]: a checkpoint's header in the sync; its sections
/// follow as [`StateSection`]s.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StateCkpt {
    pub ring: RingId,
    pub ckpt: CkptId,
    pub meta: CkptMeta,
    pub sections: u32,
}

/// [`EX_STATE_SECTION`]: one section in the sync.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StateSection {
    pub ring: RingId,
    pub ckpt: CkptId,
    pub id: Bytes,
    pub expiration_ns: i64,
    pub size: u64,
    pub last_update_ns: i64,
    pub modified: u64,
    /// The bytes, or `None` when the sender has lost them.
    pub data: Option<Bytes>,
}

// ----- helpers -------------------------------------------------------------

fn put_ring(enc: &mut Encoder, r: RingId) {
    enc.put_u64(r.seq).put_u32(r.rep.get());
}

fn get_ring(dec: &mut Decoder<'_>) -> Result<RingId, DecodeError> {
    let seq = dec.get_u64()?;
    let rep = get_node(dec)?;
    Ok(RingId { seq, rep })
}

fn get_node(dec: &mut Decoder<'_>) -> Result<NodeId, DecodeError> {
    let v = dec.get_u32()?;
    NodeId::new(v).ok_or(DecodeError::BadValue {
        what: "node id",
        value: 0,
    })
}

fn get_opt_node(dec: &mut Decoder<'_>) -> Result<Option<NodeId>, DecodeError> {
    Ok(NodeId::new(dec.get_u32()?))
}

fn get_bytes(dec: &mut Decoder<'_>, what: &'static str, max: usize) -> Result<Bytes, DecodeError> {
    Ok(Bytes::copy_from_slice(dec.get_len_prefixed(what, max)?))
}

fn get_ckpt(dec: &mut Decoder<'_>) -> Result<CkptId, DecodeError> {
    CkptId::decode_from(dec)
}

fn finish<T>(dec: Decoder<'_>, v: T) -> Result<T, DecodeError> {
    dec.finish()?;
    Ok(v)
}

impl Op {
    fn encode_into(&self, enc: &mut Encoder) {
        match self {
            Op::Open { name, attrs, flags } => {
                enc.put_u8(0).put_len_prefixed(name);
                match attrs {
                    Some(a) => {
                        enc.put_bool(true);
                        a.encode_into(enc);
                    }
                    None => {
                        enc.put_bool(false);
                    }
                }
                enc.put_u32(*flags);
            }
            Op::Close { ckpts } => {
                enc.put_u8(1).put_count(ckpts.len());
                for c in ckpts {
                    c.encode_into(enc);
                }
            }
            Op::Unlink { name } => {
                enc.put_u8(2).put_len_prefixed(name);
            }
            Op::RetentionSet { ckpt, ns } => {
                enc.put_u8(3);
                ckpt.encode_into(enc);
                enc.put_i64(*ns);
            }
            Op::ActiveSet { ckpt } => {
                enc.put_u8(4);
                ckpt.encode_into(enc);
            }
            Op::SectionCreate {
                ckpt,
                id,
                exp,
                data,
            } => {
                enc.put_u8(5);
                ckpt.encode_into(enc);
                enc.put_len_prefixed(id)
                    .put_i64(*exp)
                    .put_len_prefixed(data);
            }
            Op::SectionDelete { ckpt, id } => {
                enc.put_u8(6);
                ckpt.encode_into(enc);
                enc.put_len_prefixed(id);
            }
            Op::ExpirationSet { ckpt, id, exp } => {
                enc.put_u8(7);
                ckpt.encode_into(enc);
                enc.put_len_prefixed(id).put_i64(*exp);
            }
            Op::Write { ckpt, elements } => {
                enc.put_u8(8);
                ckpt.encode_into(enc);
                enc.put_count(elements.len());
                for e in elements {
                    e.encode_into(enc);
                }
            }
            Op::Overwrite { ckpt, id, data } => {
                enc.put_u8(9);
                ckpt.encode_into(enc);
                enc.put_len_prefixed(id).put_len_prefixed(data);
            }
            Op::Read { ckpt, elements } => {
                enc.put_u8(10);
                ckpt.encode_into(enc);
                enc.put_count(elements.len());
                for e in elements {
                    e.encode_into(enc);
                }
            }
            Op::Synchronize { ckpt } => {
                enc.put_u8(11);
                ckpt.encode_into(enc);
            }
            Op::Recover { ckpt, id } => {
                enc.put_u8(12);
                ckpt.encode_into(enc);
                enc.put_len_prefixed(id);
            }
            Op::ExpireSections { ckpt, wall_ns } => {
                enc.put_u8(13);
                ckpt.encode_into(enc);
                enc.put_i64(*wall_ns);
            }
        }
    }

    fn decode_from(dec: &mut Decoder<'_>) -> Result<Op, DecodeError> {
        let kind = dec.get_u8()?;
        Ok(match kind {
            0 => {
                let name = get_bytes(dec, "name", MAX_NAME)?;
                let attrs = if dec.get_bool("attributes present")? {
                    Some(CreationAttributes::decode_from(dec)?)
                } else {
                    None
                };
                Op::Open {
                    name,
                    attrs,
                    flags: dec.get_u32()?,
                }
            }
            1 => {
                let n = dec.get_count("checkpoints", MAX_HANDLES_PER_CONN, CKPT_ID_BYTES)?;
                let mut ckpts = Vec::with_capacity(n);
                for _ in 0..n {
                    ckpts.push(get_ckpt(dec)?);
                }
                Op::Close { ckpts }
            }
            2 => Op::Unlink {
                name: get_bytes(dec, "name", MAX_NAME)?,
            },
            3 => Op::RetentionSet {
                ckpt: get_ckpt(dec)?,
                ns: dec.get_i64()?,
            },
            4 => Op::ActiveSet {
                ckpt: get_ckpt(dec)?,
            },
            5 => Op::SectionCreate {
                ckpt: get_ckpt(dec)?,
                id: get_bytes(dec, "section id", MAX_ID)?,
                exp: dec.get_i64()?,
                data: get_bytes(dec, "data", MAX_DATA)?,
            },
            6 => Op::SectionDelete {
                ckpt: get_ckpt(dec)?,
                id: get_bytes(dec, "section id", MAX_ID)?,
            },
            7 => Op::ExpirationSet {
                ckpt: get_ckpt(dec)?,
                id: get_bytes(dec, "section id", MAX_ID)?,
                exp: dec.get_i64()?,
            },
            8 => {
                let ckpt = get_ckpt(dec)?;
                let n = dec.get_count("write elements", MAX_IO_ELEMENTS, 16)?;
                let mut elements = Vec::with_capacity(n);
                for _ in 0..n {
                    elements.push(WriteElement::decode_from(dec)?);
                }
                Op::Write { ckpt, elements }
            }
            9 => Op::Overwrite {
                ckpt: get_ckpt(dec)?,
                id: get_bytes(dec, "section id", MAX_ID)?,
                data: get_bytes(dec, "data", MAX_DATA)?,
            },
            10 => {
                let ckpt = get_ckpt(dec)?;
                let n = dec.get_count("read elements", MAX_IO_ELEMENTS, 20)?;
                let mut elements = Vec::with_capacity(n);
                for _ in 0..n {
                    elements.push(ReadElement::decode_from(dec)?);
                }
                Op::Read { ckpt, elements }
            }
            11 => Op::Synchronize {
                ckpt: get_ckpt(dec)?,
            },
            12 => Op::Recover {
                ckpt: get_ckpt(dec)?,
                id: get_bytes(dec, "section id", MAX_ID)?,
            },
            13 => Op::ExpireSections {
                ckpt: get_ckpt(dec)?,
                wall_ns: dec.get_i64()?,
            },
            v => {
                return Err(DecodeError::BadValue {
                    what: "operation",
                    value: v.into(),
                })
            }
        })
    }

    /// The checkpoint the operation names, if it names one by id.
    pub(crate) fn ckpt(&self) -> Option<CkptId> {
        match self {
            Op::Open { .. } | Op::Unlink { .. } => None,
            Op::Close { ckpts } => ckpts.first().copied(),
            Op::RetentionSet { ckpt, .. }
            | Op::ActiveSet { ckpt }
            | Op::SectionCreate { ckpt, .. }
            | Op::SectionDelete { ckpt, .. }
            | Op::ExpirationSet { ckpt, .. }
            | Op::Write { ckpt, .. }
            | Op::Overwrite { ckpt, .. }
            | Op::Read { ckpt, .. }
            | Op::Synchronize { ckpt }
            | Op::Recover { ckpt, .. }
            | Op::ExpireSections { ckpt, .. } => Some(*ckpt),
        }
    }

    /// Bytes of data it carries (for the queue and buffer limits).
    pub(crate) fn data_bytes(&self) -> u64 {
        match self {
            Op::SectionCreate { data, .. } | Op::Overwrite { data, .. } => data.len() as u64,
            Op::Write { elements, .. } => elements.iter().map(|e| e.data.len() as u64).sum(),
            _ => 0,
        }
    }
}

impl RingOp {
    /// Its body.
    pub(crate) fn encode(&self) -> Bytes {
        let mut enc = Encoder::new();
        enc.put_u64(self.conn)
            .put_u64(self.tag)
            .put_i64(self.wall_ns);
        self.op.encode_into(&mut enc);
        enc.finish()
    }

    /// Decodes a body from a peer.
    pub(crate) fn decode(body: &[u8]) -> Result<RingOp, DecodeError> {
        let mut dec = Decoder::new(body);
        let v = RingOp {
            conn: dec.get_u64()?,
            tag: dec.get_u64()?,
            wall_ns: dec.get_i64()?,
            op: Op::decode_from(&mut dec)?,
        };
        finish(dec, v)
    }
}

impl Vote {
    /// Its body.
    pub(crate) fn encode(&self) -> Bytes {
        let mut enc = Encoder::new();
        self.ckpt.encode_into(&mut enc);
        put_ring(&mut enc, self.ring);
        enc.put_u64(self.seq).put_u32(status_code(self.status));
        enc.finish()
    }

    /// Decodes a body from a peer.
    pub(crate) fn decode(body: &[u8]) -> Result<Vote, DecodeError> {
        let mut dec = Decoder::new(body);
        let v = Vote {
            ckpt: get_ckpt(&mut dec)?,
            ring: get_ring(&mut dec)?,
            seq: dec.get_u64()?,
            status: dec.get_status()?,
        };
        finish(dec, v)
    }
}

impl Copy {
    /// Its body.
    pub(crate) fn encode(&self) -> Bytes {
        let mut enc = Encoder::new();
        put_ring(&mut enc, self.ring);
        self.ckpt.encode_into(&mut enc);
        enc.put_len_prefixed(&self.id)
            .put_u64(self.as_of)
            .put_u32(status_code(self.status))
            .put_len_prefixed(&self.data);
        enc.finish()
    }

    /// Decodes a body from a peer.
    pub(crate) fn decode(body: &[u8]) -> Result<Copy, DecodeError> {
        let mut dec = Decoder::new(body);
        let v = Copy {
            ring: get_ring(&mut dec)?,
            ckpt: get_ckpt(&mut dec)?,
            id: get_bytes(&mut dec, "section id", MAX_ID)?,
            as_of: dec.get_u64()?,
            status: dec.get_status()?,
            data: get_bytes(&mut dec, "data", MAX_DATA)?,
        };
        finish(dec, v)
    }
}

impl Expire {
    /// Its body (at most [`MAX_EXPIRE_CKPTS`] checkpoints: the sender
    /// keeps to it).
    pub(crate) fn encode(&self) -> Bytes {
        let mut enc = Encoder::new();
        let ckpts = &self.ckpts[..self.ckpts.len().min(MAX_EXPIRE_CKPTS)];
        enc.put_i64(self.wall_ns).put_count(ckpts.len());
        for (c, epoch) in ckpts {
            c.encode_into(&mut enc);
            enc.put_u64(*epoch);
        }
        enc.finish()
    }

    /// Decodes a body from a peer.
    pub(crate) fn decode(body: &[u8]) -> Result<Expire, DecodeError> {
        let mut dec = Decoder::new(body);
        let wall_ns = dec.get_i64()?;
        let n = dec.get_count("checkpoints", MAX_EXPIRE_CKPTS, CKPT_ID_BYTES + 8)?;
        let mut ckpts = Vec::with_capacity(n);
        for _ in 0..n {
            ckpts.push((get_ckpt(&mut dec)?, dec.get_u64()?));
        }
        finish(dec, Expire { wall_ns, ckpts })
    }
}

impl Summary {
    /// Its body (at most [`SUMMARY_ENTRIES_PER_MSG`] entries: the sender
    /// chunks to it).
    pub(crate) fn encode(&self) -> Bytes {
        let mut enc = Encoder::new();
        put_ring(&mut enc, self.ring);
        let entries = &self.entries[..self.entries.len().min(SUMMARY_ENTRIES_PER_MSG)];
        enc.put_u32(self.chunk)
            .put_bool(self.last)
            .put_count(entries.len());
        for e in entries {
            e.ckpt.encode_into(&mut enc);
            enc.put_u64(e.version)
                .put_u64(e.digest)
                .put_bool(e.intact)
                .put_u32(e.openers);
        }
        enc.finish()
    }

    /// Decodes a body from a peer.
    pub(crate) fn decode(body: &[u8]) -> Result<Summary, DecodeError> {
        let mut dec = Decoder::new(body);
        let ring = get_ring(&mut dec)?;
        let chunk = dec.get_u32()?;
        let last = dec.get_bool("last")?;
        let n = dec.get_count("entries", SUMMARY_ENTRIES_PER_MSG, CKPT_ID_BYTES + 21)?;
        let mut entries = Vec::with_capacity(n);
        for _ in 0..n {
            entries.push(SummaryEntry {
                ckpt: get_ckpt(&mut dec)?,
                version: dec.get_u64()?,
                digest: dec.get_u64()?,
                intact: dec.get_bool("intact")?,
                openers: dec.get_u32()?,
            });
        }
        finish(
            dec,
            Summary {
                ring,
                chunk,
                last,
                entries,
            },
        )
    }
}

impl StateCkpt {
    /// Its body.
    pub(crate) fn encode(&self) -> Bytes {
        let mut enc = Encoder::new();
        put_ring(&mut enc, self.ring);
        self.ckpt.encode_into(&mut enc);
        let m = &self.meta;
        enc.put_len_prefixed(&m.name).put_bool(m.linked);
        m.attrs.encode_into(&mut enc);
        enc.put_u32(m.active.map_or(0, NodeId::get))
            .put_u64(m.version)
            .put_u64(m.decision_seq)
            .put_u64(m.zero_epoch)
            .put_u64(m.generated)
            .put_u32(self.sections);
        enc.finish()
    }

    /// Decodes a body from a peer.
    pub(crate) fn decode(body: &[u8]) -> Result<StateCkpt, DecodeError> {
        let mut dec = Decoder::new(body);
        let ring = get_ring(&mut dec)?;
        let ckpt = get_ckpt(&mut dec)?;
        let meta = CkptMeta {
            name: get_bytes(&mut dec, "name", MAX_NAME)?,
            linked: dec.get_bool("linked")?,
            attrs: CreationAttributes::decode_from(&mut dec)?,
            active: get_opt_node(&mut dec)?,
            version: dec.get_u64()?,
            decision_seq: dec.get_u64()?,
            zero_epoch: dec.get_u64()?,
            generated: dec.get_u64()?,
        };
        let sections = dec.get_u32()?;
        finish(
            dec,
            StateCkpt {
                ring,
                ckpt,
                meta,
                sections,
            },
        )
    }
}

impl StateSection {
    /// Its body.
    pub(crate) fn encode(&self) -> Bytes {
        let mut enc = Encoder::new();
        put_ring(&mut enc, self.ring);
        self.ckpt.encode_into(&mut enc);
        enc.put_len_prefixed(&self.id)
            .put_i64(self.expiration_ns)
            .put_u64(self.size)
            .put_i64(self.last_update_ns)
            .put_u64(self.modified);
        match &self.data {
            Some(d) => enc.put_bool(true).put_len_prefixed(d),
            None => enc.put_bool(false),
        };
        enc.finish()
    }

    /// Decodes a body from a peer.
    pub(crate) fn decode(body: &[u8]) -> Result<StateSection, DecodeError> {
        let mut dec = Decoder::new(body);
        let v = StateSection {
            ring: get_ring(&mut dec)?,
            ckpt: get_ckpt(&mut dec)?,
            id: get_bytes(&mut dec, "section id", MAX_ID)?,
            expiration_ns: dec.get_i64()?,
            size: dec.get_u64()?,
            last_update_ns: dec.get_i64()?,
            modified: dec.get_u64()?,
            data: if dec.get_bool("data present")? {
                Some(get_bytes(&mut dec, "data", MAX_DATA)?)
            } else {
                None
            },
        };
        finish(dec, v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(i: u32) -> NodeId {
        NodeId::new(i).unwrap()
    }

    fn key() -> CkptId {
        CkptId {
            ring_seq: 12,
            ring_rep: 2,
            index: 7,
        }
    }

    #[test]
    fn every_message_round_trips() {
        let ring = RingId { seq: 8, rep: n(1) };
        let ops = vec![
            Op::Open {
                name: Bytes::from_static(b"c"),
                attrs: Some(CreationAttributes::ZERO),
                flags: 7,
            },
            Op::Close {
                ckpts: vec![key(), key()],
            },
            Op::Unlink {
                name: Bytes::from_static(b"c"),
            },
            Op::RetentionSet { ckpt: key(), ns: 5 },
            Op::ActiveSet { ckpt: key() },
            Op::SectionCreate {
                ckpt: key(),
                id: Bytes::new(),
                exp: -1,
                data: Bytes::from_static(b"d"),
            },
            Op::SectionDelete {
                ckpt: key(),
                id: Bytes::from_static(b"s"),
            },
            Op::ExpirationSet {
                ckpt: key(),
                id: Bytes::from_static(b"s"),
                exp: 3,
            },
            Op::Write {
                ckpt: key(),
                elements: vec![WriteElement {
                    section_id: Bytes::from_static(b"s"),
                    offset: 4,
                    data: Bytes::from_static(b"xy"),
                }],
            },
            Op::Overwrite {
                ckpt: key(),
                id: Bytes::from_static(b"s"),
                data: Bytes::new(),
            },
            Op::Read {
                ckpt: key(),
                elements: vec![ReadElement {
                    section_id: Bytes::from_static(b"s"),
                    offset: 0,
                    size: 9,
                }],
            },
            Op::Synchronize { ckpt: key() },
            Op::Recover {
                ckpt: key(),
                id: Bytes::from_static(b"s"),
            },
            Op::ExpireSections {
                ckpt: key(),
                wall_ns: 5,
            },
        ];
        for op in ops {
            let r = RingOp {
                conn: 3,
                tag: 9,
                wall_ns: 77,
                op,
            };
            assert_eq!(RingOp::decode(&r.encode()), Ok(r));
        }
        let v = Vote {
            ckpt: key(),
            ring,
            seq: 2,
            status: Err(proto::AisError::NoMemory),
        };
        assert_eq!(Vote::decode(&v.encode()), Ok(v));
        let c = Copy {
            ring,
            ckpt: key(),
            id: Bytes::from_static(b"s"),
            as_of: 4,
            status: Ok(()),
            data: Bytes::from_static(b"abc"),
        };
        assert_eq!(Copy::decode(&c.encode()), Ok(c));
        let e = Expire {
            wall_ns: 5,
            ckpts: vec![(key(), 3)],
        };
        assert_eq!(Expire::decode(&e.encode()), Ok(e));
        let s = Summary {
            ring,
            chunk: 1,
            last: true,
            entries: vec![SummaryEntry {
                ckpt: key(),
                version: 1,
                digest: 2,
                intact: false,
                openers: 3,
            }],
        };
        assert_eq!(Summary::decode(&s.encode()), Ok(s));
        let sc = StateCkpt {
            ring,
            ckpt: key(),
            meta: CkptMeta {
                name: Bytes::from_static(b"c"),
                linked: true,
                attrs: CreationAttributes::ZERO,
                active: Some(n(3)),
                version: 1,
                decision_seq: 2,
                zero_epoch: 3,
                generated: 4,
            },
            sections: 5,
        };
        assert_eq!(StateCkpt::decode(&sc.encode()), Ok(sc));
        let ss = StateSection {
            ring,
            ckpt: key(),
            id: Bytes::from_static(b"s"),
            expiration_ns: 1,
            size: 3,
            last_update_ns: 2,
            modified: 4,
            data: None,
        };
        assert_eq!(StateSection::decode(&ss.encode()), Ok(ss));
    }

    #[test]
    fn decoders_survive_every_truncation_and_garbage() {
        let r = RingOp {
            conn: 1,
            tag: 2,
            wall_ns: 3,
            op: Op::Write {
                ckpt: key(),
                elements: vec![WriteElement {
                    section_id: Bytes::from_static(b"s"),
                    offset: 0,
                    data: Bytes::from_static(b"abc"),
                }],
            },
        }
        .encode();
        for cut in 0..r.len() {
            assert!(RingOp::decode(&r[..cut]).is_err());
        }
        let mut seed: u64 = 0x1234_5678;
        for len in 0..300usize {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    (seed >> 33) as u8
                })
                .collect();
            let _ = RingOp::decode(&bytes);
            let _ = Vote::decode(&bytes);
            let _ = Copy::decode(&bytes);
            let _ = Expire::decode(&bytes);
            let _ = Summary::decode(&bytes);
            let _ = StateCkpt::decode(&bytes);
            let _ = StateSection::decode(&bytes);
        }
    }
}
