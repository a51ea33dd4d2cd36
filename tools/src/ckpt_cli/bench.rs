//! `ais-ckpt bench` (issue #5): how many section writes and reads per
//! second one client gets from the local executive, and how long each
//! takes.
//!
//! It creates a checkpoint of its own (a unique name, retention 0, so a
//! bench that dies leaves nothing once its connection is gone), creates
//! `sections` sections of `size` bytes, then for `duration` overwrites
//! them round-robin (`saCkptSectionOverwrite`) as fast as one outstanding
//! request allows, then for `duration` reads them (one whole-section read
//! each). TRY_AGAIN answers are retried by the session and counted. It
//! unlinks and closes the checkpoint at the end, also when a phase failed.

use std::time::{Duration, Instant};

use proto::ckpt::{
    CreationAttributes, OPEN_CREATE, OPEN_READ, OPEN_WRITE, WR_ACTIVE_REPLICA, WR_ALL_REPLICAS,
};
use serde_json::{json, Value};

use super::session::{Opened, Session, ToolError};

/// What to measure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BenchConfig {
    /// How long each phase (writes, then reads) runs.
    pub duration: Duration,
    /// How many sections, written and read round-robin.
    pub sections: u32,
    /// Bytes in each section (and in each write and read).
    pub size: u64,
    /// Whether writes go to all replicas (`SA_CKPT_WR_ALL_REPLICAS`) or
    /// to the active one (`SA_CKPT_WR_ACTIVE_REPLICA`).
    pub all_replicas: bool,
}

impl BenchConfig {
    /// The mode's name as the command line spells it.
    pub fn mode_name(&self) -> &'static str {
        if self.all_replicas {
            "all"
        } else {
            "active"
        }
    }

    /// The bench checkpoint's creation attributes: exactly room for the
    /// sections, retention 0.
    pub fn attributes(&self) -> CreationAttributes {
        CreationAttributes {
            creation_flags: if self.all_replicas {
                WR_ALL_REPLICAS
            } else {
                WR_ACTIVE_REPLICA
            },
            checkpoint_size: u64::from(self.sections).saturating_mul(self.size),
            retention_duration_ns: 0,
            max_sections: self.sections,
            max_section_size: self.size,
            max_section_id_size: 16,
        }
    }
}

/// One phase's numbers.
#[derive(Clone, Debug, PartialEq)]
pub struct PhaseResult {
    /// Operations completed.
    pub ops: u64,
    /// How long the phase ran.
    pub elapsed: Duration,
    /// Median latency of one operation, in microseconds.
    pub p50_us: f64,
    /// 99th-percentile latency, in microseconds.
    pub p99_us: f64,
    /// Slowest operation, in microseconds.
    pub max_us: f64,
}

impl PhaseResult {
    /// Operations per second.
    pub fn per_second(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.ops as f64 / secs
        } else {
            0.0
        }
    }

    fn from_latencies(mut latencies: Vec<Duration>, elapsed: Duration) -> PhaseResult {
        latencies.sort_unstable();
        let us = |d: Option<&Duration>| d.map_or(0.0, |d| d.as_secs_f64() * 1e6);
        PhaseResult {
            ops: latencies.len() as u64,
            elapsed,
            p50_us: us(percentile(&latencies, 50)),
            p99_us: us(percentile(&latencies, 99)),
            max_us: us(latencies.last()),
        }
    }
}

/// The whole run.
#[derive(Clone, Debug, PartialEq)]
pub struct BenchResult {
    /// The checkpoint used (unlinked again).
    pub name: String,
    /// The node the tool talked to.
    pub node_id: u32,
    /// The writes (overwrites).
    pub writes: PhaseResult,
    /// The reads.
    pub reads: PhaseResult,
    /// Requests answered TRY_AGAIN and retried, over both phases.
    pub try_agains: u64,
}

/// The `pct`th percentile of sorted values (nearest rank).
pub fn percentile<T>(sorted: &[T], pct: u32) -> Option<&T> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (sorted.len() * pct as usize).div_ceil(100).max(1);
    sorted.get(rank.min(sorted.len()) - 1)
}

/// Section id `i` of the bench checkpoint.
fn section_id(i: u32) -> Vec<u8> {
    format!("s{i}").into_bytes()
}

/// Runs the bench on `session` with a checkpoint named `name`.
///
/// # Errors
/// The first request that failed (after TRY_AGAIN retries); the
/// checkpoint is still closed and unlinked.
pub fn run(
    session: &mut Session,
    name: &str,
    config: &BenchConfig,
) -> Result<BenchResult, ToolError> {
    if config.sections == 0 || config.size == 0 {
        return Err(ToolError::Local(
            "bench: --sections and --size must be at least 1".into(),
        ));
    }
    if config.size > proto::ckpt::MAX_DATA_BYTES as u64 {
        return Err(ToolError::Local(format!(
            "bench: --size is at most {} (one request's data)",
            proto::ckpt::MAX_DATA_BYTES
        )));
    }
    let node_id = session.store_status()?.node_id;
    let key = name.as_bytes();
    let flags = OPEN_CREATE | OPEN_READ | OPEN_WRITE;
    let opened = session.open(key, flags, Some(config.attributes()))?;
    let retries_before = session.try_agains();
    // Unlinked while still open (retention 0 removes it at the close, and
    // an unlink after that would find nothing).
    let measured = session.run_and_close(opened, |s, o| {
        let phases = measure(s, o, config);
        let unlinked = s.unlink(key);
        let value = phases?;
        unlinked?;
        Ok(value)
    });
    let try_agains = session.try_agains() - retries_before;
    let (writes, reads) = measured?;
    Ok(BenchResult {
        name: name.to_string(),
        node_id,
        writes,
        reads,
        try_agains,
    })
}

/// The write phase, then the read phase, on the opened bench checkpoint.
fn measure(
    s: &mut Session,
    o: &Opened,
    config: &BenchConfig,
) -> Result<(PhaseResult, PhaseResult), ToolError> {
    let data = vec![0x5a_u8; config.size as usize];
    let ids: Vec<Vec<u8>> = (0..config.sections).map(section_id).collect();
    for id in &ids {
        s.put_section(o, id, None, &data)?;
    }
    let mut latencies = Vec::new();
    let start = Instant::now();
    let mut i = 0usize;
    while start.elapsed() < config.duration {
        let t = Instant::now();
        s.put_section(o, &ids[i % ids.len()], None, &data)?;
        latencies.push(t.elapsed());
        i += 1;
    }
    let writes = PhaseResult::from_latencies(latencies, start.elapsed());
    let mut latencies = Vec::new();
    let start = Instant::now();
    let mut i = 0usize;
    while start.elapsed() < config.duration {
        let t = Instant::now();
        let got = s.read_once(o, &ids[i % ids.len()], 0, config.size)?;
        latencies.push(t.elapsed());
        if got.len() as u64 != config.size {
            return Err(ToolError::Local(format!(
                "bench: read {} bytes of a {}-byte section",
                got.len(),
                config.size
            )));
        }
        i += 1;
    }
    let reads = PhaseResult::from_latencies(latencies, start.elapsed());
    Ok((writes, reads))
}

/// The result for people.
pub fn text(config: &BenchConfig, r: &BenchResult) -> String {
    let line = |what: &str, p: &PhaseResult| {
        format!(
            "{what:<6} {:>10.0}/s  {:>8} ops  p50 {:>8.1} us  p99 {:>8.1} us  max {:>9.1} us\n",
            p.per_second(),
            p.ops,
            p.p50_us,
            p.p99_us,
            p.max_us
        )
    };
    format!(
        "ckpt bench on node {}: mode {}, {} section(s) of {} bytes, {:.1} s per phase \
         (checkpoint {}, unlinked)\n{}{}try_again retries: {}\n",
        r.node_id,
        config.mode_name(),
        config.sections,
        config.size,
        config.duration.as_secs_f64(),
        r.name,
        line("writes", &r.writes),
        line("reads", &r.reads),
        r.try_agains
    )
}

/// The result as one JSON object (for scripts).
pub fn json(config: &BenchConfig, r: &BenchResult) -> Value {
    let phase = |p: &PhaseResult| {
        json!({
            "ops": p.ops,
            "secs": p.elapsed.as_secs_f64(),
            "per_s": p.per_second(),
            "p50_us": p.p50_us,
            "p99_us": p.p99_us,
            "max_us": p.max_us,
        })
    };
    json!({
        "node_id": r.node_id,
        "mode": config.mode_name(),
        "sections": config.sections,
        "size": config.size,
        "checkpoint": r.name,
        "writes": phase(&r.writes),
        "reads": phase(&r.reads),
        "try_agains": r.try_agains,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&v, 50), Some(&50));
        assert_eq!(percentile(&v, 99), Some(&99));
        assert_eq!(percentile(&v, 100), Some(&100));
        assert_eq!(percentile(&[7u32], 99), Some(&7));
        assert_eq!(percentile::<u32>(&[], 50), None);
        let p = PhaseResult::from_latencies(
            vec![
                Duration::from_micros(30),
                Duration::from_micros(10),
                Duration::from_micros(20),
            ],
            Duration::from_secs(2),
        );
        assert_eq!(p.ops, 3);
        assert!((p.p50_us - 20.0).abs() < 1e-6);
        assert!((p.max_us - 30.0).abs() < 1e-6);
        assert!((p.per_second() - 1.5).abs() < 1e-9);
    }

    #[test]
    fn attributes_fit_the_sections() {
        let c = BenchConfig {
            duration: Duration::from_secs(1),
            sections: 16,
            size: 1024,
            all_replicas: false,
        };
        let a = c.attributes();
        assert_eq!(a.creation_flags, WR_ACTIVE_REPLICA);
        assert_eq!(a.checkpoint_size, 16 * 1024);
        assert_eq!(a.max_section_size, 1024);
        assert_eq!(c.mode_name(), "active");
    }
}
