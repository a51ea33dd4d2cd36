//! `Node`: one Totem instance plus the service table and client connections; driven by the daemon and the simulator. Filled by issue #3.
