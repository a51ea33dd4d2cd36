//! `ais-bench`: throughput, latency, failure detection and memory of a
//! running AIS cluster, measured through the client library C programs use
//! (`ais::evs`, the safe layer under `evs.h`), with the workloads of the
//! corosync harness in `shared/bench/corosync` (`bench.c`), so that both
//! can be put side by side in one table.
//!
//! Modes (one module each):
//! - [`throughput`][throughput]: participants (one EVS connection per node socket)
//!   join one group; one or all of them multicast messages of a size as
//!   fast as flow control allows for a time; every participant counts
//!   deliveries and checks no loss, FIFO per sender and one delivery
//!   order (a hash compared across participants); the daemons' CPU time
//!   per delivered message and their memory.
//! - [`latency`][latency]: one participant sends one message at a time and waits
//!   for its own copy; the others record one-way delays.
//! - [`failover`][failover]: kill one daemon (SIGKILL or SIGTERM) and time until the
//!   survivors see the new configuration (EVS configuration change, and
//!   the ring status polled).
//! - [`udp`][udp]: the raw loopback UDP ceiling: datagrams of a size sent one
//!   per syscall from one socket to another.
//! - [`report`][report]: the table from the key=value lines of the runs (ours and
//!   the corosync harness's), with medians and ratios.
//!
//! Every mode prints one `key=value` line per result, in the corosync
//! harness's vocabulary (`mode=tput ... msgs_per_s=... MB_per_s=...`), so
//! [`report`] reads both.

pub mod daemon;
pub mod failover;
pub mod latency;
pub mod message;
pub mod report;
pub mod session;
pub mod stats;
pub mod throughput;
pub mod udp;

use std::path::Path;

use ais::evs::EvsError;
use thiserror::Error;

/// Why a bench run failed.
#[derive(Debug, Error)]
pub enum BenchError {
    /// An EVS call failed.
    #[error("{0}: {1}")]
    Evs(&'static str, EvsError),
    /// A wait ran out of time.
    #[error("timed out: {0}")]
    Timeout(String),
    /// A system call failed.
    #[error("{0}: {1}")]
    Io(&'static str, std::io::Error),
    /// The run cannot be done as asked.
    #[error("{0}")]
    Setup(String),
}

impl BenchError {
    /// An EVS error of call `what` at `socket`.
    pub fn evs(what: &'static str, socket: &Path, e: EvsError) -> BenchError {
        BenchError::Setup(format!("{what} at {}: {e}", socket.display()))
    }
}

/// A result line's `key=value` fields, in order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Line(Vec<(String, String)>);

impl Line {
    /// Adds `key=value` (spaces in the value become `_`).
    pub fn put(mut self, key: &str, value: impl std::fmt::Display) -> Line {
        let v = value.to_string().replace(char::is_whitespace, "_");
        self.0.push((key.to_string(), v));
        self
    }

    /// Adds `key=value` with `decimals` decimals, or `key=NA`.
    pub fn num(self, key: &str, value: Option<f64>, decimals: usize) -> Line {
        match value {
            Some(v) if v.is_finite() => self.put(key, format!("{v:.decimals$}")),
            _ => self.put(key, "NA"),
        }
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `key` as a number (`None` for NA or absent).
    pub fn number(&self, key: &str) -> Option<f64> {
        self.get(key)?.parse().ok().filter(|v: &f64| v.is_finite())
    }

    /// Parses `k=v k=v ...`; words without `=` are skipped.
    pub fn parse(text: &str) -> Line {
        Line(
            text.split_whitespace()
                .filter_map(|w| w.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }
}

impl std::fmt::Display for Line {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{k}={v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip() {
        let l = Line::default()
            .put("result", "ok")
            .put("label", "a b")
            .num("x", Some(1.234), 1)
            .num("y", None, 1);
        assert_eq!(l.to_string(), "result=ok label=a_b x=1.2 y=NA");
        let p = Line::parse(&l.to_string());
        assert_eq!(p, l);
        assert_eq!(p.number("x"), Some(1.2));
        assert_eq!(p.number("y"), None);
        assert_eq!(p.get("label"), Some("a_b"));
    }
}
