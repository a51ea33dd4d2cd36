//! libais: the SA Forum AIS C API and a safe Rust client.
//!
//! [`client`] is the safe, blocking Rust client of the executive's IPC
//! socket: one [`client::Connection`] per library handle. The C layer
//! (issue #4) wraps it.

pub mod client;
pub mod clm;
pub mod evs;
pub mod ffi;
