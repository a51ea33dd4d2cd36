//! Service engines and the barrier sync, sans IO.
//!
//! - [`engine`]: the [`Engine`] trait every service implements, the [`Ctx`]
//!   it acts through, and the header of service messages on the ring;
//! - [`barrier`]: the barrier sync after each configuration change;
//! - [`table`]: the [`ServiceTable`] that holds the engines in handler-list
//!   order and routes deliveries, configuration changes and client
//!   requests to them.
//!
//! # Driving a table
//! The node feeds it Totem's events in the order Totem produced them
//! ([`ServiceTable::confchg`], [`ServiceTable::deliver`]), client inputs,
//! and [`ServiceTable::handle_timeout`] at [`ServiceTable::poll_timeout`];
//! after each input it calls [`ServiceTable::pump`] and then drains
//! [`ServiceTable::take_outputs`] (frames for clients) and
//! [`ServiceTable::poll_event`] (sync progress). `now` never goes back.

pub mod barrier;
pub mod engine;
pub mod table;

pub use engine::{ClientOutput, ConnId, Ctx, Engine, ExecHeader, RingTx, RingView, SyncStep};
pub use table::{ServiceTable, SyncEvent, TableError, TableStats};
