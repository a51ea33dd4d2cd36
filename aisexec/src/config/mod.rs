//! The daemon's configuration file: corosync.conf / openais.conf.
//!
//! [`syntax`] reads the brace format into a tree with line numbers;
//! [`model`] turns the tree into a typed [`ClusterConfig`] and maps its
//! `totem` section onto [`totem::TotemConfig`]. [`load`] does both for a
//! file on disk.

pub mod model;
pub mod syntax;

pub use model::{
    load, ClusterConfig, ConfigError, CryptoCipher, CryptoHash, DebugLevel, IgnoredSection,
    InterfaceSection, IpVersion, IpcAccess, LoggerSubsys, LoggingConfig, NodeEntry, Principal,
    SystemSection, TotemSection, TotemSettingError, Transport, Warning, DEFAULT_PORT,
};
pub use syntax::ParseError;
