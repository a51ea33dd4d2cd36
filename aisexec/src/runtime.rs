//! Keeping the daemon responsive on a loaded host: `mlockall` so that
//! paging never delays the token, SCHED_RR so that CPU-bound processes
//! do not (openais did both at start). Both are optional (`system {
//! mlockall, sched_rr }`) and need privileges; failing to get them is a
//! warning, never fatal.

use nix::sys::mman::{mlockall, MlockAllFlags};
use nix::sys::resource::{getrlimit, Resource, RLIM_INFINITY};

/// Locks current and future memory, if that is safe: with a finite
/// RLIMIT_MEMLOCK an unprivileged `MCL_FUTURE` would make later allocations
/// fail once the limit is reached, so it is skipped with a warning.
pub fn lock_memory() {
    let euid = nix::unistd::geteuid();
    if !euid.is_root() {
        match getrlimit(Resource::RLIMIT_MEMLOCK) {
            Ok((soft, _)) if soft == RLIM_INFINITY => {}
            Ok((soft, _)) => {
                log::warn!(
                    "mlockall skipped: RLIMIT_MEMLOCK is {soft} bytes and the daemon is not root \
                     (locking future memory could make allocations fail); memory may be paged out"
                );
                return;
            }
            Err(e) => {
                log::warn!("mlockall skipped: cannot read RLIMIT_MEMLOCK: {e}");
                return;
            }
        }
    }
    match mlockall(MlockAllFlags::MCL_CURRENT | MlockAllFlags::MCL_FUTURE) {
        Ok(()) => log::info!("memory locked (mlockall)"),
        Err(e) => log::warn!("mlockall failed: {e}; memory may be paged out"),
    }
}

/// Switches the process to SCHED_RR at the highest priority.
pub fn realtime_scheduling() {
    match set_sched_rr() {
        Ok(priority) => log::info!("scheduling: SCHED_RR priority {priority}"),
        Err(e) => log::warn!(
            "cannot set SCHED_RR scheduling: {e}; the token may be delayed on a loaded host"
        ),
    }
}

#[allow(unsafe_code)]
fn set_sched_rr() -> std::io::Result<i32> {
    // SAFETY: sched_get_priority_max takes a plain integer and touches no
    // memory of ours.
    let priority = unsafe { libc::sched_get_priority_max(libc::SCHED_RR) };
    if priority < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let param = libc::sched_param {
        sched_priority: priority,
    };
    // SAFETY: `param` is a valid, initialized sched_param that outlives the
    // call; pid 0 is this process.
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_RR, &param) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(priority)
}
