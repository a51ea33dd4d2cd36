//! The aisexec daemon: config, event loop, UDP transport, IPC server. Filled by issue #3.

pub mod config;
pub mod ipc;
pub mod ring_crypto;
