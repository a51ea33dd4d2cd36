//! Totem single-ring ordering and membership protocol, sans IO.
//!
//! This crate is the protocol and nothing else: no sockets, no threads, no
//! clock reads. A driver (the `aisexec` daemon, or the deterministic
//! simulator in `testsuite`) feeds it inputs with the current time and
//! carries out what it asks for. It implements the protocol of Amir, Moser,
//! Melliar-Smith, Agarwal and Ciarfella, "The Totem single-ring ordering and
//! membership protocol", ACM TOCS 13(4), 1995, with the deviations listed in
//! the docs of [`srp`], [`token`], [`membership`] and [`recovery`].
//!
//! # Inputs
//! - [`Totem::handle_packet`]: a datagram received from the network;
//! - [`Totem::handle_timeout`]: the time returned by [`Totem::poll_timeout`]
//!   has come (a spurious or early call does nothing);
//! - [`Totem::handle_mcast`]: the application wants to multicast a message.
//!
//! # Outputs and the order a driver drains them
//! After every `handle_*` call (and after [`Totem::new`]) the driver must:
//! 1. send every datagram returned by [`Totem::poll_transmit`] until it
//!    returns `None` (to one node, or to every configured node);
//! 2. hand every event returned by [`Totem::poll_event`] to the services
//!    until it returns `None` (deliveries and configuration changes, in the
//!    order they happened: this order *is* extended virtual synchrony);
//! 3. arm its single timer at [`Totem::poll_timeout`].
//!
//! `now` must never go backwards between calls. Transmissions are drained
//! before events so a delivery callback that multicasts again cannot
//! reorder the ring's own packets.

pub mod config;
pub mod ids;
pub mod membership;
mod ordering;
pub mod packing;
pub mod recovery;
pub mod srp;
pub mod time;
pub mod timer;
pub mod token;
pub mod wire;

pub use config::{ConfigError, TotemConfig, ValidConfig};
pub use ids::{NodeId, RingId, Seq};
pub use srp::{
    ConfigChange, ConfigKind, Delivery, Destination, Event, McastError, RingState, Stats, Totem,
    Transmit,
};
pub use time::Instant;
pub use wire::{Datagram, Guarantee, MAX_NETMTU_BYTES};
