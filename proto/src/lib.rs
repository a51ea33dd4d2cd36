//! The client <-> executive wire format, shared by `libais` and `aisexec`.
//!
//! Everything a local client and its executive exchange over the Unix socket
//! is defined here, and nothing else: no IO, no clock.
//!
//! - [`frame`]: the fixed 16-byte frame header and the incremental
//!   [`FrameReader`] that cuts a byte stream into frames;
//! - [`codec`]: the bounds-checked body [`Decoder`] and its [`Encoder`];
//! - [`error`]: [`AisError`], the SA Forum `SaAisErrorT` values;
//! - [`service`]: [`ServiceId`], which engine a connection talks to;
//! - [`setup`]: the first exchange on a connection ([`Hello`] and its reply);
//! - [`status`]: the status service's messages (ring status, counters);
//! - [`clm`], [`evs`], [`ckpt`], [`backup`]: the CLM, EVS, CKPT and BACKUP
//!   services' requests, responses and callbacks;
//! - [`backup_file`]: the on-disk format of a backup (manifest, data files).
//!
//! # A connection's life
//! 1. The client connects to the executive's socket. The executive checks
//!    the peer's credentials (SO_PEERCRED); a refused peer gets a setup reply
//!    with [`AisError::Access`] and is closed.
//! 2. The client sends a [`Hello`] (a Request frame with id
//!    [`setup::SETUP_ID`]) naming one service and the interface version it
//!    wants; the executive answers with a [`HelloReply`]. One connection
//!    talks to one service.
//! 3. The client sends Request frames; the executive answers each with
//!    exactly one Response frame of the same service and id, in request
//!    order. Callback frames may come at any time between responses.
//!
//! Every decoder here treats its input as hostile: bounds-checked, never
//! panics, never allocates by a length it has not checked against the bytes
//! actually present.

pub mod backup;
pub mod backup_file;
pub mod ckpt;
pub mod clm;
pub mod codec;
pub mod error;
pub mod evs;
pub mod frame;
pub mod service;
pub mod setup;
pub mod status;

pub use codec::{DecodeError, Decoder, Encoder};
pub use error::{status_code, status_from_code, AisError, Status, SA_AIS_OK};
pub use frame::{
    encode_frame, encode_frame_parts, encode_frame_with_tail, size_socket_buffers, EncodedFrame,
    Frame, FrameError, FrameKind, FrameReader, FrameTooBig, HEADER_BYTES, MAX_BODY_BYTES,
    MAX_FRAME_BYTES, PROTOCOL_VERSION, SOCKET_BUFFER_BYTES,
};
pub use service::{ServiceId, UnknownService};
pub use setup::{Hello, HelloReply, SetupError, Version};
