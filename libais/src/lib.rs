//! libais: the SA Forum AIS C API and a safe Rust client.
//!
//! [`client`] is the safe, blocking Rust client of the executive's IPC
//! socket: one [`client::Connection`] per library handle. [`clm`],
//! [`ckpt`], [`evs`] and [`backup`] are a safe API per service over it; the C layer
//! ([`ffi`]) wraps those.

pub mod backup;
pub mod ckpt;
pub mod client;
pub mod clm;
pub mod evs;
pub mod ffi;
