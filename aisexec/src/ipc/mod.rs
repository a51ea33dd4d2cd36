//! The Unix-socket IPC server: local clients (libais) talk to the executive
//! through it.
//!
//! One listening socket (mode 0770 by default) in the run directory, one
//! connection per library handle, frames as defined by `proto`. Each
//! connection is authenticated with SO_PEERCRED against an [`AllowList`]
//! when it is accepted; a refused peer gets a setup reply with
//! `SA_AIS_ERR_ACCESS` and is closed. A client that sends garbage, too
//! much, or vanishes costs only its own connection, and every queue is
//! bounded: input by the frame size (surplus waits in the client's socket
//! buffer), output per connection in bytes and frames (a full queue is an
//! error the caller turns into TRY_AGAIN or a close).
//!
//! The server does no protocol work: it hands complete request frames to
//! the executive and writes what it is given. See [`IpcServer`] for the
//! order in which the event loop drives it.

pub mod auth;
mod connection;
mod server;
mod socket_file;

pub use auth::{AllowList, AllowedBy, Creds};
pub use server::{
    BindError, CloseReason, ConnId, IpcConfig, IpcEvent, IpcServer, SendError,
    DEFAULT_FRAMES_PER_ROUND, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_QUEUE_BYTES,
    DEFAULT_MAX_QUEUE_FRAMES, DEFAULT_MODE,
};
pub use socket_file::MAX_SOCKET_PATH_BYTES;

#[cfg(test)]
mod tests;
