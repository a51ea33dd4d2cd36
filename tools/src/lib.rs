//! Command-line tools (ais-ring-status, ais-ckpt, ais-backup, ais-keygen, ais-bench). Filled by issues #3-#8.

pub mod backup_cli;
pub mod ckpt_cli;
