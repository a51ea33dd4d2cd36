//! Service engines and the barrier sync, sans IO.
//!
//! - [`engine`]: the [`Engine`] trait every service implements, the [`Ctx`]
//!   it acts through, and the header of service messages on the ring;
//! - [`barrier`]: the barrier sync after each configuration change;
//! - [`table`]: the [`ServiceTable`] that holds the engines in handler-list
//!   order and routes deliveries, configuration changes and client
//!   requests to them;
//! - [`clm`], [`evs`], [`ckpt`], [`backup`]: the CLM, EVS, CKPT and BACKUP
//!   engines.
//!
//! # Driving a table
//! The node feeds it Totem's events in the order Totem produced them
//! ([`ServiceTable::confchg`], [`ServiceTable::deliver`]), client inputs,
//! and [`ServiceTable::handle_timeout`] at [`ServiceTable::poll_timeout`];
//! after each input it calls [`ServiceTable::pump`] and then drains the
//! frames for clients ([`ServiceTable::move_outputs_into`], which keeps
//! the buffers' room, or [`ServiceTable::take_outputs`]) and
//! [`ServiceTable::poll_event`] (sync progress). `now` never goes back.

pub mod backup;
pub mod barrier;
pub mod ckpt;
pub mod clm;
pub mod engine;
pub mod evs;
pub mod table;

pub use engine::{ClientOutput, ConnId, Ctx, Engine, ExecHeader, RingTx, RingView, SyncStep};
pub use table::{ServiceTable, SyncEvent, TableError, TableStats};

/// The engines of a standard executive, in handler-list order (CLM, EVS,
/// CKPT, BACKUP), minus those in `disabled`. CKPT
/// gets [`ckpt::DEFAULT_MEMORY_LIMIT_BYTES`] and takes the executive's boot
/// time as the wall clock at `Instant::ZERO` (the daemon starts its clock
/// there); a driver that wants another memory limit builds
/// [`ckpt::Ckpt::new`] itself.
pub fn standard_engines(
    local: clm::LocalNode,
    disabled: &[proto::ServiceId],
) -> Vec<Box<dyn Engine>> {
    let ckpt = ckpt::CkptConfig::new(local.boot_timestamp_ns);
    let backup = backup::BackupConfig {
        boot_timestamp_ns: local.boot_timestamp_ns,
    };
    let all: Vec<Box<dyn Engine>> = vec![
        Box::new(clm::Clm::new(local)),
        Box::new(evs::Evs::new()),
        Box::new(ckpt::Ckpt::new(ckpt)),
        Box::new(backup::Backup::new(backup)),
    ];
    all.into_iter()
        .filter(|e| !disabled.contains(&e.service()))
        .collect()
}
