//! Hostile-input programs over the daemon's real code paths, shared by
//! the cargo-fuzz targets (`fuzz/fuzz_targets/`) and the property tests
//! (`tests/prop_hostile.rs`), so a property test runs exactly what a fuzz
//! target runs, a bounded number of times.
//!
//! - [`cursor`]: reads fuzz input as small integers and byte strings;
//! - [`lone`]: a ready lone node ([`node::Node`] with CLM, EVS, CKPT);
//! - [`table`]: a service table in a ring of two whose peer is the input;
//! - [`pair`]: two Totem instances whose traffic the input can corrupt;
//! - [`programs`]: the programs themselves, one per fuzz target.
//!
//! What every program checks: nothing panics (Totem's and the engines'
//! invariant asserts included), every frame sent to a client decodes, and
//! nothing a client sends moves the ring.

pub mod cursor;
pub mod lone;
pub mod pair;
pub mod programs;
pub mod table;

pub use cursor::Cursor;
pub use lone::LoneNode;
pub use pair::{reseal, Pair};
pub use table::TableHarness;
