//! Property tests over every request, response and callback body decoder
//! of CLM, EVS and CKPT, as the executive (requests) and the library
//! (responses, callbacks) run them on hostile bytes:
//!
//! - arbitrary bytes and mutated valid bodies (bit flips, byte sets,
//!   truncation, extension, a length field made huge) never panic;
//! - a body that decodes is canonical: it re-encodes to exactly the bytes
//!   it came from (so no two encodings mean one message, and no decoder
//!   skips bytes it did not check);
//! - generated requests round-trip through encode and decode.

use bytes::Bytes;
use proptest::collection::vec;
use proptest::prelude::*;
use proto::{ckpt, clm, evs};

/// Decodes `bytes` as `T`; if it decodes, it must re-encode to `bytes`.
macro_rules! canonical {
    ($bytes:expr, $($t:ty),+ $(,)?) => {
        $(
            if let Ok(v) = <$t>::decode($bytes) {
                prop_assert_eq!(
                    &v.encode()[..],
                    &$bytes[..],
                    "{} decoded from bytes it does not re-encode to",
                    stringify!($t)
                );
            }
        )+
    };
}

fn check_all(bytes: &[u8]) -> Result<(), TestCaseError> {
    // Some decoders slice their message out of the frame's shared buffer.
    let bytes = &Bytes::copy_from_slice(bytes);
    canonical!(
        bytes,
        clm::TrackStart,
        clm::TrackReply,
        clm::TrackCallback,
        clm::NodeGet,
        clm::NodeGetAsync,
        clm::NodeGetCallback,
        evs::Groups,
        evs::McastJoined,
        evs::McastGroups,
        evs::Membership,
        evs::Deliver,
        evs::ConfChg,
        ckpt::Open,
        ckpt::OpenAsync,
        ckpt::OpenReply,
        ckpt::OpenCallback,
        ckpt::HandleRequest,
        ckpt::Unlink,
        ckpt::RetentionDurationSet,
        ckpt::CheckpointStatus,
        ckpt::SectionCreate,
        ckpt::SectionCreateReply,
        ckpt::SectionDelete,
        ckpt::SectionExpirationTimeSet,
        ckpt::IterationInitialize,
        ckpt::IterationReply,
        ckpt::IterationRequest,
        ckpt::SectionDescriptor,
        ckpt::Write,
        ckpt::SectionOverwrite,
        ckpt::Read,
        ckpt::ReadReply,
        ckpt::ErroneousIndex,
        ckpt::SynchronizeAsync,
        ckpt::SynchronizeCallback,
        ckpt::StoreStatus,
        ckpt::List,
        ckpt::ListReply,
    );
    Ok(())
}

fn name() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 1..40).prop_map(Bytes::from)
}

fn attributes() -> impl Strategy<Value = ckpt::CreationAttributes> {
    (
        0u32..16,
        any::<u64>(),
        any::<i64>(),
        any::<u32>(),
        any::<u64>(),
        any::<u64>(),
    )
        .prop_map(
            |(f, size, ret, secs, sec_size, id_size)| ckpt::CreationAttributes {
                creation_flags: f,
                checkpoint_size: size,
                retention_duration_ns: ret,
                max_sections: secs,
                max_section_size: sec_size,
                max_section_id_size: id_size,
            },
        )
}

fn open() -> impl Strategy<Value = ckpt::Open> {
    (name(), proptest::option::of(attributes()), 0u32..8).prop_map(|(name, attributes, f)| {
        ckpt::Open {
            name,
            attributes,
            open_flags: f,
        }
    })
}

fn section_id() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..24).prop_map(Bytes::from)
}

fn group() -> impl Strategy<Value = evs::Group> {
    any::<[u8; 32]>().prop_map(evs::Group)
}

fn guarantee() -> impl Strategy<Value = evs::EvsGuarantee> {
    prop_oneof![
        Just(evs::EvsGuarantee::Unordered),
        Just(evs::EvsGuarantee::Fifo),
        Just(evs::EvsGuarantee::Agreed),
    ]
}

/// Valid request bodies of every service, as the library would send them.
fn request() -> impl Strategy<Value = Vec<u8>> {
    let v = |b: Bytes| b.to_vec();
    prop_oneof![
        (any::<u8>(), any::<bool>()).prop_map(move |(flags, c)| v(clm::TrackStart {
            flags,
            current_as_callback: c
        }
        .encode())),
        any::<u32>().prop_map(move |node_id| v(clm::NodeGet { node_id }.encode())),
        (any::<u64>(), any::<u32>()).prop_map(move |(invocation, node_id)| v(clm::NodeGetAsync {
            invocation,
            node_id
        }
        .encode())),
        vec(group(), 0..4).prop_map(move |groups| v(evs::Groups { groups }.encode())),
        (guarantee(), vec(any::<u8>(), 0..64)).prop_map(move |(guarantee, msg)| v(
            evs::McastJoined {
                guarantee,
                msg: Bytes::from(msg)
            }
            .encode()
        )),
        (guarantee(), vec(group(), 0..4), vec(any::<u8>(), 0..64)).prop_map(
            move |(guarantee, groups, msg)| v(evs::McastGroups {
                guarantee,
                groups,
                msg: Bytes::from(msg)
            }
            .encode())
        ),
        open().prop_map(move |o| v(o.encode())),
        (any::<u64>(), open()).prop_map(move |(invocation, open)| v(ckpt::OpenAsync {
            invocation,
            open
        }
        .encode())),
        any::<u64>().prop_map(move |handle| v(ckpt::HandleRequest { handle }.encode())),
        name().prop_map(move |name| v(ckpt::Unlink { name }.encode())),
        (
            any::<u64>(),
            section_id(),
            any::<i64>(),
            vec(any::<u8>(), 0..64)
        )
            .prop_map(move |(handle, section_id, expiration_time_ns, data)| v(
                ckpt::SectionCreate {
                    handle,
                    section_id,
                    expiration_time_ns,
                    initial_data: Bytes::from(data),
                }
                .encode()
            )),
        (
            any::<u64>(),
            vec((section_id(), any::<u64>(), vec(any::<u8>(), 1..32)), 0..4)
        )
            .prop_map(move |(handle, els)| v(ckpt::Write {
                handle,
                elements: els
                    .into_iter()
                    .map(|(section_id, offset, data)| ckpt::WriteElement {
                        section_id,
                        offset,
                        data: Bytes::from(data),
                    })
                    .collect(),
            }
            .encode())),
        (
            any::<u64>(),
            vec((section_id(), any::<u64>(), any::<u64>()), 0..4)
        )
            .prop_map(move |(handle, els)| v(ckpt::Read {
                handle,
                elements: els
                    .into_iter()
                    .map(|(section_id, offset, size)| ckpt::ReadElement {
                        section_id,
                        offset,
                        size,
                    })
                    .collect(),
            }
            .encode())),
        (any::<u64>(), any::<i64>()).prop_map(move |(handle, t)| v(ckpt::IterationInitialize {
            handle,
            sections_chosen: ckpt::SectionsChosen::Any,
            expiration_time_ns: t,
        }
        .encode())),
    ]
}

#[derive(Clone, Debug)]
enum Mutation {
    Flip(usize, u8),
    Set(usize, u8),
    Truncate(usize),
    Insert(usize, Vec<u8>),
    HugeLength(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(a, b)| Mutation::Flip(a, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(a, b)| Mutation::Set(a, b)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), vec(any::<u8>(), 1..16)).prop_map(|(a, b)| Mutation::Insert(a, b)),
        any::<usize>().prop_map(Mutation::HugeLength),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    let n = bytes.len();
    match m {
        Mutation::Flip(at, bit) if n > 0 => bytes[at % n] ^= 1 << bit,
        Mutation::Set(at, b) if n > 0 => bytes[at % n] = *b,
        Mutation::Truncate(at) => bytes.truncate(at % (n + 1)),
        Mutation::Insert(at, extra) => {
            let at = at % (n + 1);
            bytes.splice(at..at, extra.iter().copied());
        }
        Mutation::HugeLength(at) if n >= 4 => {
            let at = at % (n - 3);
            bytes[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        }
        _ => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic_and_decode_canonically(bytes in vec(any::<u8>(), 0..300)) {
        check_all(&bytes)?;
    }

    #[test]
    fn mutated_requests_never_panic_and_decode_canonically(
        body in request(),
        mutations in vec(mutation(), 1..4),
    ) {
        let mut bytes = body;
        for m in &mutations {
            apply(&mut bytes, m);
        }
        check_all(&bytes)?;
    }

    #[test]
    fn valid_requests_decode_canonically(body in request()) {
        check_all(&body)?;
    }

    #[test]
    fn generated_opens_and_writes_round_trip(o in open(), handle in any::<u64>(), data in vec(any::<u8>(), 1..64)) {
        prop_assert_eq!(ckpt::Open::decode(&o.encode()), Ok(o.clone()));
        let w = ckpt::Write {
            handle,
            elements: vec![ckpt::WriteElement {
                section_id: o.name.clone(),
                offset: 0,
                data: Bytes::from(data),
            }],
        };
        prop_assert_eq!(ckpt::Write::decode(&w.encode()), Ok(w));
    }
}
