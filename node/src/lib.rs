//! `Node`: one Totem instance, the service table with its barrier sync, and
//! the table of client connections. Sans IO: the `aisexec` daemon drives it
//! with sockets and the system clock, the simulator in `testsuite` with a
//! simulated network and clock. One code path, tested both ways.
//!
//! # Inputs
//! - [`Node::handle_packet`]: a datagram from a peer; or, for a batch of
//!   them, [`Node::receive_packet`] for each (sending its datagrams at
//!   once) and then [`Node::deliver_received`], before any other input;
//! - [`Node::handle_timeout`]: the time from [`Node::poll_timeout`] came;
//! - [`Node::client_connected`], [`Node::client_frame`],
//!   [`Node::client_closed`]: a local client's connection, each complete
//!   frame it sent, its disconnection;
//! - [`Node::leave`]: leave the ring cleanly (SIGTERM).
//!
//! # Outputs and the order a driver drains them
//! After every input the driver must:
//! 1. send every datagram from [`Node::poll_transmit`];
//! 2. write every frame from [`Node::poll_client_output`] to its
//!    connection (a frame for a connection the driver already closed is
//!    dropped);
//! 3. handle every [`NodeEvent`] from [`Node::poll_event`]; a
//!    [`NodeEvent::CloseClient`] comes after the frames for that
//!    connection, so the driver closes it once those are written;
//! 4. arm its timer at [`Node::poll_timeout`].
//!
//! `now` never goes backwards between calls.

mod clients;
mod node;
pub mod posted;
mod status;

pub use clients::Creds;
pub use node::{Node, NodeConfig, NodeEvent, NodeInfo, NodeStats};
pub use services::ConnId;
