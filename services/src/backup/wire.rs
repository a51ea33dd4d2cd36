//! The BACKUP engine's messages on the ring, and their bounds-checked
//! codec. Every message names its job first.
//!
//! The control messages follow NDB's parallel backup (DEFINE_BACKUP_REQ,
//! START_BACKUP_REQ, STOP_BACKUP_REQ, ABORT_BACKUP_ORD): the master sends
//! them, and every node applies them at the same point of the total order.
//! REPORT is a participant's answer for one checkpoint; REGISTER is the
//! re-registration of a job's state in the BACKUP sync step (after the
//! Athena backup system's `abs_register_device` with its job pointer).

use bytes::Bytes;
use proto::backup::{
    ErrorClass, MAX_CHECKPOINTS, MAX_MESSAGE_BYTES, MAX_NAME_BYTES, MAX_PATH_BYTES,
};
use proto::backup::{NodeError, MAX_ERRORS};
use proto::backup_file::{Cut, FileDigest, MAX_MEMBERS};
use proto::ckpt::CreationAttributes;
use proto::{DecodeError, Decoder, Encoder};

/// A client asked for a backup (sent by the node it asked).
pub const REQUEST: u16 = 0;
/// The master defines the job.
pub const DEFINE: u16 = 1;
/// The master starts it: this message's position is the cut.
pub const START: u16 = 2;
/// A participant's result for one checkpoint.
pub const REPORT: u16 = 3;
/// The master moves one checkpoint to another node.
pub const RESCHEDULE: u16 = 4;
/// The master ends the writing phase: every checkpoint has an outcome.
pub const STOP: u16 = 5;
/// The master aborts the job: every node removes its files of it.
pub const ABORT: u16 = 6;
/// The master wrote and flushed the manifest: the job is done.
pub const COMPLETE: u16 = 7;
/// A member's job state, re-registered with the (possibly new) master.
pub const REGISTER: u16 = 8;

/// The body of [`REQUEST`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The job.
    pub backup_id: u64,
    /// The node the client asked.
    pub requester: u32,
    /// The client's connection there.
    pub conn: u64,
    /// The client's invocation.
    pub invocation: u64,
    /// The destination directory.
    pub destination: String,
    /// Names asked for (empty: all).
    pub selection: Vec<Bytes>,
}

/// One checkpoint's state, as REGISTER carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ItemState {
    /// Not written yet; `owner` writes it.
    Pending {
        /// The node writing it.
        owner: u32,
    },
    /// Written and flushed.
    Done {
        /// The node that wrote it.
        node: u32,
        /// Its file, relative to the backup directory.
        file: String,
        /// Its size and CRC.
        digest: FileDigest,
    },
    /// Not in the backup.
    Failed {
        /// Why.
        class: ErrorClass,
        /// What happened.
        message: String,
    },
}

/// What a checkpoint of a job is (replicated with REGISTER, so a node that
/// learns the job from registrations can write its manifest).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItemMeta {
    /// The checkpoint's name.
    pub name: Bytes,
    /// Its creation attributes.
    pub attributes: CreationAttributes,
    /// Sections at the cut.
    pub sections: u32,
    /// Data bytes at the cut.
    pub data_bytes: u64,
}

/// A participant's outcome for one checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Written and flushed, as `file`.
    Written {
        /// The file, relative to the backup directory.
        file: String,
        /// Its size and CRC.
        digest: FileDigest,
    },
    /// Not written.
    Error {
        /// Why.
        class: ErrorClass,
        /// What happened.
        message: String,
    },
}

/// The body of [`REGISTER`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Register {
    /// The job as it was asked for (so a node that missed it learns it).
    pub request: Request,
    /// The sender.
    pub node: u32,
    /// Phase code ([`proto::backup::JobPhase`]).
    pub phase: u32,
    /// Whether the sender holds the job's snapshot (it can take shares).
    pub has_snapshot: bool,
    /// Why it aborted, if it did.
    pub reason: String,
    /// The cut, once START was delivered.
    pub cut: Option<Cut>,
    /// The members at the cut.
    pub members: Vec<u32>,
    /// Every checkpoint's state, by index (empty before the cut).
    pub items: Vec<ItemState>,
    /// Every checkpoint's name and attributes, by index.
    pub meta: Vec<ItemMeta>,
    /// Errors nodes met (their shares moved).
    pub errors: Vec<NodeError>,
}

/// A decoded message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Msg {
    /// [`REQUEST`].
    Request(Request),
    /// [`DEFINE`].
    Define {
        /// The job.
        backup_id: u64,
        /// The master defining it.
        master: u32,
    },
    /// [`START`].
    Start {
        /// The job.
        backup_id: u64,
    },
    /// [`REPORT`].
    Report {
        /// The job.
        backup_id: u64,
        /// The participant.
        node: u32,
        /// The checkpoint's index.
        item: u32,
        /// What happened.
        outcome: Outcome,
    },
    /// [`RESCHEDULE`].
    Reschedule {
        /// The job.
        backup_id: u64,
        /// The checkpoint's index.
        item: u32,
        /// Its owner until now.
        from: u32,
        /// Its new owner.
        to: u32,
    },
    /// [`STOP`].
    Stop {
        /// The job.
        backup_id: u64,
    },
    /// [`ABORT`].
    Abort {
        /// The job.
        backup_id: u64,
        /// Why.
        reason: String,
    },
    /// [`COMPLETE`].
    Complete {
        /// The job.
        backup_id: u64,
        /// The manifest's size and CRC.
        manifest: FileDigest,
    },
    /// [`REGISTER`].
    Register(Register),
}

const MAX_FILE_BYTES: usize = 256;

fn put_request(enc: &mut Encoder, r: &Request) {
    enc.put_u64(r.backup_id)
        .put_u32(r.requester)
        .put_u64(r.conn)
        .put_u64(r.invocation)
        .put_str(&r.destination)
        .put_count(r.selection.len());
    for n in &r.selection {
        enc.put_len_prefixed(n);
    }
}

fn get_request(dec: &mut Decoder<'_>) -> Result<Request, DecodeError> {
    let backup_id = dec.get_u64()?;
    let requester = dec.get_u32()?;
    let conn = dec.get_u64()?;
    let invocation = dec.get_u64()?;
    let destination = dec.get_string("destination", MAX_PATH_BYTES)?;
    let n = dec.get_count("selection", MAX_CHECKPOINTS, 4)?;
    let mut selection = Vec::with_capacity(n);
    for _ in 0..n {
        selection.push(Bytes::copy_from_slice(
            dec.get_len_prefixed("checkpoint name", MAX_NAME_BYTES)?,
        ));
    }
    Ok(Request {
        backup_id,
        requester,
        conn,
        invocation,
        destination,
        selection,
    })
}

fn get_class(dec: &mut Decoder<'_>) -> Result<ErrorClass, DecodeError> {
    let code = dec.get_u32()?;
    ErrorClass::from_code(code).ok_or(DecodeError::BadValue {
        what: "error class",
        value: code.into(),
    })
}

fn put_digest(enc: &mut Encoder, d: FileDigest) {
    enc.put_u64(d.size).put_u32(d.crc32);
}

fn get_digest(dec: &mut Decoder<'_>) -> Result<FileDigest, DecodeError> {
    Ok(FileDigest {
        size: dec.get_u64()?,
        crc32: dec.get_u32()?,
    })
}

fn put_item(enc: &mut Encoder, s: &ItemState) {
    match s {
        ItemState::Pending { owner } => {
            enc.put_u8(0).put_u32(*owner);
        }
        ItemState::Done { node, file, digest } => {
            enc.put_u8(1).put_u32(*node).put_str(file);
            put_digest(enc, *digest);
        }
        ItemState::Failed { class, message } => {
            enc.put_u8(2).put_u32(*class as u32).put_str(message);
        }
    }
}

fn get_item(dec: &mut Decoder<'_>) -> Result<ItemState, DecodeError> {
    Ok(match dec.get_u8()? {
        0 => ItemState::Pending {
            owner: dec.get_u32()?,
        },
        1 => ItemState::Done {
            node: dec.get_u32()?,
            file: dec.get_string("file", MAX_FILE_BYTES)?,
            digest: get_digest(dec)?,
        },
        2 => ItemState::Failed {
            class: get_class(dec)?,
            message: dec.get_string("message", MAX_MESSAGE_BYTES)?,
        },
        v => {
            return Err(DecodeError::BadValue {
                what: "item state",
                value: v.into(),
            })
        }
    })
}

impl Msg {
    /// The message id and body.
    pub fn encode(&self) -> (u16, Bytes) {
        let mut enc = Encoder::new();
        let id = match self {
            Msg::Request(r) => {
                put_request(&mut enc, r);
                REQUEST
            }
            Msg::Define { backup_id, master } => {
                enc.put_u64(*backup_id).put_u32(*master);
                DEFINE
            }
            Msg::Start { backup_id } => {
                enc.put_u64(*backup_id);
                START
            }
            Msg::Report {
                backup_id,
                node,
                item,
                outcome,
            } => {
                enc.put_u64(*backup_id).put_u32(*node).put_u32(*item);
                match outcome {
                    Outcome::Written { file, digest } => {
                        enc.put_u8(0).put_str(file);
                        put_digest(&mut enc, *digest);
                    }
                    Outcome::Error { class, message } => {
                        enc.put_u8(1).put_u32(*class as u32).put_str(message);
                    }
                }
                REPORT
            }
            Msg::Reschedule {
                backup_id,
                item,
                from,
                to,
            } => {
                enc.put_u64(*backup_id)
                    .put_u32(*item)
                    .put_u32(*from)
                    .put_u32(*to);
                RESCHEDULE
            }
            Msg::Stop { backup_id } => {
                enc.put_u64(*backup_id);
                STOP
            }
            Msg::Abort { backup_id, reason } => {
                enc.put_u64(*backup_id).put_str(reason);
                ABORT
            }
            Msg::Complete {
                backup_id,
                manifest,
            } => {
                enc.put_u64(*backup_id);
                put_digest(&mut enc, *manifest);
                COMPLETE
            }
            Msg::Register(r) => {
                put_request(&mut enc, &r.request);
                enc.put_u32(r.node)
                    .put_u32(r.phase)
                    .put_bool(r.has_snapshot)
                    .put_str(&r.reason);
                match r.cut {
                    Some(c) => {
                        enc.put_bool(true)
                            .put_u64(c.ring_seq)
                            .put_u32(c.ring_rep)
                            .put_u64(c.position);
                    }
                    None => {
                        enc.put_bool(false);
                    }
                }
                enc.put_count(r.members.len());
                for m in &r.members {
                    enc.put_u32(*m);
                }
                enc.put_count(r.items.len());
                for i in &r.items {
                    put_item(&mut enc, i);
                }
                enc.put_count(r.errors.len());
                for e in &r.errors {
                    e.encode_into(&mut enc);
                }
                enc.put_count(r.meta.len());
                for m in &r.meta {
                    enc.put_len_prefixed(&m.name);
                    m.attributes.encode_into(&mut enc);
                    enc.put_u32(m.sections).put_u64(m.data_bytes);
                }
                REGISTER
            }
        };
        (id, enc.finish())
    }

    /// Decodes message `id` from a peer.
    ///
    /// # Errors
    /// [`DecodeError`] on an unknown id or a malformed body.
    pub fn decode(id: u16, body: &[u8]) -> Result<Msg, DecodeError> {
        let mut dec = Decoder::new(body);
        let m = match id {
            REQUEST => Msg::Request(get_request(&mut dec)?),
            DEFINE => Msg::Define {
                backup_id: dec.get_u64()?,
                master: dec.get_u32()?,
            },
            START => Msg::Start {
                backup_id: dec.get_u64()?,
            },
            REPORT => {
                let backup_id = dec.get_u64()?;
                let node = dec.get_u32()?;
                let item = dec.get_u32()?;
                let outcome = match dec.get_u8()? {
                    0 => Outcome::Written {
                        file: dec.get_string("file", MAX_FILE_BYTES)?,
                        digest: get_digest(&mut dec)?,
                    },
                    1 => Outcome::Error {
                        class: get_class(&mut dec)?,
                        message: dec.get_string("message", MAX_MESSAGE_BYTES)?,
                    },
                    v => {
                        return Err(DecodeError::BadValue {
                            what: "outcome",
                            value: v.into(),
                        })
                    }
                };
                Msg::Report {
                    backup_id,
                    node,
                    item,
                    outcome,
                }
            }
            RESCHEDULE => Msg::Reschedule {
                backup_id: dec.get_u64()?,
                item: dec.get_u32()?,
                from: dec.get_u32()?,
                to: dec.get_u32()?,
            },
            STOP => Msg::Stop {
                backup_id: dec.get_u64()?,
            },
            ABORT => Msg::Abort {
                backup_id: dec.get_u64()?,
                reason: dec.get_string("reason", MAX_MESSAGE_BYTES)?,
            },
            COMPLETE => Msg::Complete {
                backup_id: dec.get_u64()?,
                manifest: get_digest(&mut dec)?,
            },
            REGISTER => {
                let request = get_request(&mut dec)?;
                let node = dec.get_u32()?;
                let phase = dec.get_u32()?;
                let has_snapshot = dec.get_bool("has snapshot")?;
                let reason = dec.get_string("reason", MAX_MESSAGE_BYTES)?;
                let cut = if dec.get_bool("cut present")? {
                    Some(Cut {
                        ring_seq: dec.get_u64()?,
                        ring_rep: dec.get_u32()?,
                        position: dec.get_u64()?,
                    })
                } else {
                    None
                };
                let n = dec.get_count("members", MAX_MEMBERS, 4)?;
                let mut members = Vec::with_capacity(n);
                for _ in 0..n {
                    members.push(dec.get_u32()?);
                }
                let n = dec.get_count("items", MAX_CHECKPOINTS, 5)?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(get_item(&mut dec)?);
                }
                let n = dec.get_count("errors", MAX_ERRORS, 12)?;
                let mut errors = Vec::with_capacity(n);
                for _ in 0..n {
                    errors.push(NodeError::decode_from(&mut dec)?);
                }
                let n = dec.get_count("meta", MAX_CHECKPOINTS, 4 + 40 + 12)?;
                let mut meta = Vec::with_capacity(n);
                for _ in 0..n {
                    meta.push(ItemMeta {
                        name: Bytes::copy_from_slice(
                            dec.get_len_prefixed("checkpoint name", MAX_NAME_BYTES)?,
                        ),
                        attributes: CreationAttributes::decode_from(&mut dec)?,
                        sections: dec.get_u32()?,
                        data_bytes: dec.get_u64()?,
                    });
                }
                Msg::Register(Register {
                    meta,
                    request,
                    node,
                    phase,
                    has_snapshot,
                    reason,
                    cut,
                    members,
                    items,
                    errors,
                })
            }
            v => {
                return Err(DecodeError::BadValue {
                    what: "backup message id",
                    value: v.into(),
                })
            }
        };
        dec.finish()?;
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> Request {
        Request {
            backup_id: 1 << 32 | 5,
            requester: 2,
            conn: 9,
            invocation: 4,
            destination: "/b".into(),
            selection: vec![Bytes::from_static(b"a")],
        }
    }

    #[test]
    fn every_message_round_trips_and_no_prefix_decodes() {
        let d = FileDigest {
            size: 10,
            crc32: 0xabcd,
        };
        let msgs = vec![
            Msg::Request(request()),
            Msg::Define {
                backup_id: 1,
                master: 1,
            },
            Msg::Start { backup_id: 1 },
            Msg::Report {
                backup_id: 1,
                node: 2,
                item: 3,
                outcome: Outcome::Written {
                    file: "node-2/ckpt-00003.dat".into(),
                    digest: d,
                },
            },
            Msg::Report {
                backup_id: 1,
                node: 2,
                item: 3,
                outcome: Outcome::Error {
                    class: ErrorClass::DestinationFull,
                    message: "full".into(),
                },
            },
            Msg::Reschedule {
                backup_id: 1,
                item: 0,
                from: 2,
                to: 3,
            },
            Msg::Stop { backup_id: 1 },
            Msg::Abort {
                backup_id: 1,
                reason: "x".into(),
            },
            Msg::Complete {
                backup_id: 1,
                manifest: d,
            },
            Msg::Register(Register {
                request: request(),
                node: 3,
                phase: 3,
                has_snapshot: true,
                reason: String::new(),
                cut: Some(Cut {
                    ring_seq: 4,
                    ring_rep: 1,
                    position: 17,
                }),
                members: vec![1, 2, 3],
                errors: vec![NodeError {
                    node: 2,
                    class: ErrorClass::DestinationNotWritable,
                    message: "read-only".into(),
                }],
                meta: vec![ItemMeta {
                    name: Bytes::from_static(b"a"),
                    attributes: CreationAttributes::ZERO,
                    sections: 1,
                    data_bytes: 9,
                }],
                items: vec![
                    ItemState::Pending { owner: 1 },
                    ItemState::Done {
                        node: 2,
                        file: "f".into(),
                        digest: d,
                    },
                    ItemState::Failed {
                        class: ErrorClass::Vanished,
                        message: "gone".into(),
                    },
                ],
            }),
        ];
        for m in msgs {
            let (id, body) = m.encode();
            assert_eq!(Msg::decode(id, &body), Ok(m.clone()));
            for cut in 0..body.len() {
                assert!(Msg::decode(id, &body[..cut]).is_err());
            }
        }
        assert!(Msg::decode(99, &[]).is_err());
    }
}
