//! libais: the SA Forum AIS C API and a safe Rust client. Filled by issue #4.
