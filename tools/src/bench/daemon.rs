//! What the bench reads of a daemon from /proc: CPU time and memory.
//!
//! The daemon's pid is in `<run dir>/aisexec.pid`, beside its socket
//! `<run dir>/aisexec.sock`. CPU time is `utime + stime` of
//! `/proc/<pid>/stat` (all threads), in clock ticks; memory is `VmRSS`
//! and `VmHWM` (the peak resident set) of `/proc/<pid>/status`.

use std::path::{Path, PathBuf};

use nix::unistd::{sysconf, SysconfVar};

/// The pid file's name in a run directory.
pub const PID_FILE: &str = "aisexec.pid";

/// A daemon the bench reads from /proc.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Daemon {
    /// Its process id.
    pub pid: u32,
}

/// Resident memory, in KiB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Memory {
    /// `VmRSS`: resident now.
    pub rss_kib: u64,
    /// `VmHWM`: the most ever resident.
    pub hwm_kib: u64,
}

impl Daemon {
    /// The daemon whose socket is `socket`: the pid in the pid file beside
    /// it, if that process is an `aisexec`.
    pub fn beside(socket: &Path) -> Option<Daemon> {
        let pid_file = pid_file_beside(socket);
        let pid: u32 = std::fs::read_to_string(pid_file)
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
        (comm.trim() == "aisexec").then_some(Daemon { pid })
    }

    /// CPU time used so far (user + system), in microseconds.
    pub fn cpu_us(&self) -> Option<u64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).ok()?;
        let ticks = stat_cpu_ticks(&stat)?;
        let per_sec = u64::try_from(sysconf(SysconfVar::CLK_TCK).ok()??).ok()?;
        Some(ticks.saturating_mul(1_000_000) / per_sec.max(1))
    }

    /// Resident memory now and at its peak.
    pub fn memory(&self) -> Option<Memory> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        status_memory(&status)
    }
}

/// `<dir of socket>/aisexec.pid`.
pub fn pid_file_beside(socket: &Path) -> PathBuf {
    socket
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join(PID_FILE)
}

/// utime + stime (fields 14 and 15) of a `/proc/<pid>/stat` line. The
/// command name (field 2) may hold spaces and parentheses, so fields are
/// counted after its last `)`.
fn stat_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// `VmRSS` and `VmHWM` of a `/proc/<pid>/status` text.
fn status_memory(status: &str) -> Option<Memory> {
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        line[name.len()..].split_whitespace().next()?.parse().ok()
    };
    Some(Memory {
        rss_kib: field("VmRSS:")?,
        hwm_kib: field("VmHWM:")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_are_counted_after_the_command_name() {
        let stat = "4242 (ais exec) (x)) S 1 4242 4242 0 -1 4194560 100 0 0 0 \
                    17 5 0 0 20 0 3 0 123 456 789";
        assert_eq!(stat_cpu_ticks(stat), Some(22));
        assert_eq!(stat_cpu_ticks("garbage"), None);
    }

    #[test]
    fn memory_comes_from_vmrss_and_vmhwm() {
        let status = "Name:\taisexec\nVmHWM:\t   10240 kB\nVmRSS:\t    8192 kB\n";
        assert_eq!(
            status_memory(status),
            Some(Memory {
                rss_kib: 8192,
                hwm_kib: 10240
            })
        );
        assert_eq!(status_memory("Name: x\n"), None);
    }

    #[test]
    fn this_process_can_be_read() {
        let me = Daemon {
            pid: std::process::id(),
        };
        assert!(me.cpu_us().is_some());
        assert!(me.memory().unwrap().hwm_kib > 0);
    }
}
