//! Latency on an idle ring: one participant sends one message at a time and
//! waits for its own copy (self-delivery latency); the others record the
//! one-way delay from the sender's CLOCK_MONOTONIC stamp to their delivery
//! (one host, one clock).
//!
//! As the corosync harness (`bench.c lat`): `warmup` messages first, not
//! counted, then `count` measured; quantiles by ceiling rank.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use proto::evs::Group;

use super::message::{Kind, HEADER_BYTES};
use super::session::Session;
use super::stats::quantile;
use super::{BenchError, Line};

/// How long one probe may take before the run gives up.
const PROBE_PATIENCE: Duration = Duration::from_secs(10);

/// A latency run.
#[derive(Clone, Debug)]
pub struct Spec {
    /// One participant per socket.
    pub sockets: Vec<PathBuf>,
    /// Which local participant sends (index into `sockets`).
    pub sender: usize,
    /// Participants cluster-wide.
    pub participants: usize,
    /// Message size in bytes.
    pub size_bytes: usize,
    /// Probes measured.
    pub count: u64,
    /// Probes sent first and not measured.
    pub warmup: u64,
    /// The group.
    pub group: Group,
    /// Pause before each probe: with a pause longer than a few token
    /// rotations the ring is idle when the probe is sent (an application
    /// that sends now and then), so the probe also pays for waking it.
    pub gap: Duration,
}

/// Runs `spec`; one result line per participant.
///
/// # Errors
/// A participant could not connect, join, pass the barrier, or a probe did
/// not come back within 10 s.
pub fn run(spec: &Spec) -> Result<Vec<Line>, BenchError> {
    let barrier_deadline = Instant::now() + Duration::from_secs(20);
    let results: Vec<Result<Line, BenchError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = spec
            .sockets
            .iter()
            .enumerate()
            .map(|(i, socket)| scope.spawn(move || participant(spec, socket, i, barrier_deadline)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(BenchError::Setup("participant panicked".into())))
            })
            .collect()
    });
    // Every participant's failure, not only the first: one that could not
    // start leaves the others waiting at the barrier, and that is the
    // error that would show.
    let failures: Vec<String> = results
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            r.as_ref()
                .err()
                .map(|e| format!("participant {}: {e}", i + 1))
        })
        .collect();
    if failures.len() > 1 {
        return Err(BenchError::Setup(failures.join("; ")));
    }
    results.into_iter().collect()
}

fn participant(
    spec: &Spec,
    socket: &std::path::Path,
    index: usize,
    barrier_deadline: Instant,
) -> Result<Line, BenchError> {
    let stream = u32::try_from(index).unwrap_or(u32::MAX);
    let mut s = Session::open(socket, stream, &spec.group, spec.participants)?;
    s.oneway_from_seq = spec.warmup;
    s.barrier(barrier_deadline)?;
    let sender = index == spec.sender;
    let mut samples_ns = Vec::new();
    if sender {
        let mut buf = Session::buffer(spec.size_bytes);
        for seq in 0..spec.warmup + spec.count {
            if !spec.gap.is_zero() {
                // Keep answering the others while idle.
                let resume = Instant::now() + spec.gap;
                while Instant::now() < resume {
                    s.pump(resume.saturating_duration_since(Instant::now()))?;
                }
            }
            s.awaiting_own = Some(seq);
            s.own_delivered = None;
            let t0 = Instant::now();
            s.header(Kind::Latency, seq, 0).write(&mut buf);
            s.send(&buf, Duration::ZERO)?;
            let deadline = t0 + PROBE_PATIENCE;
            while s.own_delivered.is_none() {
                if Instant::now() >= deadline {
                    return Err(BenchError::Timeout(format!(
                        "probe {seq} not delivered back in {PROBE_PATIENCE:?}"
                    )));
                }
                s.pump(Duration::from_millis(100))?;
            }
            if seq >= spec.warmup {
                let t1 = s.own_delivered.unwrap_or_else(Instant::now);
                samples_ns
                    .push(u64::try_from(t1.duration_since(t0).as_nanos()).unwrap_or(u64::MAX));
            }
            // Peers that joined late still need to hear from us.
            s.tend_barrier()?;
        }
        let mut end = [0u8; HEADER_BYTES];
        s.header(Kind::End, 0, spec.count).write(&mut end);
        s.send(&end, Duration::ZERO)?;
    }
    let deadline = Instant::now() + PROBE_PATIENCE * 2;
    while s.ends() < 1 && Instant::now() < deadline {
        s.tend_barrier()?;
        s.pump(Duration::from_millis(50))?;
    }
    if !sender {
        samples_ns = std::mem::take(&mut s.oneway_ns);
    }
    samples_ns.sort_unstable();
    #[allow(clippy::cast_precision_loss)]
    let us = |p: f64| quantile(&samples_ns, p).map(|ns| ns as f64 / 1000.0);
    #[allow(clippy::cast_precision_loss)]
    let mean = (!samples_ns.is_empty()).then(|| {
        samples_ns.iter().map(|&v| v as f64).sum::<f64>() / samples_ns.len() as f64 / 1000.0
    });
    Ok(Line::default()
        .put("result", if s.ends() >= 1 { "ok" } else { "incomplete" })
        .put("impl", "ais")
        .put("mode", "lat")
        .put("node", s.me.node_id)
        .put("kind", if sender { "self" } else { "oneway" })
        .put("size", super::message::message_bytes(spec.size_bytes))
        .put("n", samples_ns.len())
        .put("gap_ms", spec.gap.as_millis())
        .num("min_us", us(0.0), 1)
        .num("p50_us", us(0.5), 1)
        .num("p90_us", us(0.9), 1)
        .num("p99_us", us(0.99), 1)
        .num("max_us", us(1.0), 1)
        .num("mean_us", mean, 1))
}
