//! The parts of `ais-ckpt` (issue #5) worth testing on their own: the CKPT
//! requests it makes ([`session`]) and how it shows their answers
//! ([`render`]), and its benchmark ([`bench`]). The command line itself
//! is `src/bin/ais-ckpt.rs`.
//!
//! The tool speaks the CKPT wire format of [`proto::ckpt`] directly over
//! one [`ais::client::Connection`]: it needs the two requests no SA Forum
//! call makes (the listing and the store status), and an operator's tool
//! should not depend on the C API's handle tables.

pub mod bench;
pub mod render;
pub mod session;
