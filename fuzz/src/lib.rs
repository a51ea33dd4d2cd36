//! What the fuzz targets share: a cursor that turns fuzz input into
//! operations, and harnesses that drive the daemon's real code paths
//! ([`node::Node`], [`services::ServiceTable`]) the way `aisexec` does,
//! without sockets or a clock.
//!
//! Each target feeds hostile bytes where a peer or a client could, and
//! checks what the daemon promises: nothing panics, every frame sent to a
//! client decodes, and the ring a lone node formed stays formed unless the
//! input really carried a membership change.

pub mod cursor;
pub mod lone;
pub mod pair;
pub mod requests;
pub mod table;

pub use cursor::Cursor;
pub use lone::LoneNode;
pub use pair::{reseal, Pair};
pub use table::TableHarness;
