//! Throughput: senders multicast as fast as flow control allows, every
//! participant counts what it delivers.
//!
//! As the corosync harness does it (`bench.c tput`): after the start
//! barrier each sender multicasts `size`-byte agreed messages for `secs`
//! seconds; on TRY_AGAIN it takes every callback waiting and tries again at
//! once (or waits up to `backoff` for one); every 8 sends it takes the
//! callbacks waiting. Then it sends End with the number sent. Every
//! participant counts Data until it has seen End from every sender; its
//! rate is messages over the time between its first and last Data.
//!
//! The daemon behind each participant is read from /proc between the
//! barrier and the last End: its CPU time per Data message delivered at
//! that node, and its memory.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use proto::evs::Group;

use super::daemon::Daemon;
use super::message::{Kind, HEADER_BYTES};
use super::session::Session;
use super::{BenchError, Line};

/// How long after the sending time the last End may take to arrive.
const END_PATIENCE: Duration = Duration::from_secs(30);

/// Sends between two non-blocking dispatches (as the corosync harness).
const SENDS_PER_DISPATCH: u64 = 8;

/// A throughput run.
#[derive(Clone, Debug)]
pub struct Spec {
    /// One participant per socket (usually one per node).
    pub sockets: Vec<PathBuf>,
    /// Message size in bytes (at least the 40-byte header).
    pub size_bytes: usize,
    /// How long each sender sends.
    pub secs: f64,
    /// How many of the local participants send (the first ones).
    pub local_senders: usize,
    /// Participants cluster-wide (the barrier waits for them).
    pub participants: usize,
    /// Senders cluster-wide (every participant waits for their Ends).
    pub senders: usize,
    /// The group.
    pub group: Group,
    /// Wait on TRY_AGAIN for a callback up to this long (zero: retry at once).
    pub backoff: Duration,
    /// A free-form label for the result lines.
    pub label: String,
}

/// What one participant measured.
#[derive(Debug)]
struct Outcome {
    session: Session,
    sender: bool,
    complete: bool,
    sent: u64,
    send_secs: f64,
    try_again: u64,
    daemon_cpu_us: Option<u64>,
    daemon: Option<Daemon>,
}

/// Runs `spec`: one thread per participant. Returns one result line per
/// participant, in socket order.
///
/// # Errors
/// A participant could not connect, join or pass the barrier.
pub fn run(spec: &Spec) -> Result<Vec<Line>, BenchError> {
    let barrier_deadline = Instant::now() + Duration::from_secs(20);
    let outcomes: Vec<Result<Outcome, BenchError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = spec
            .sockets
            .iter()
            .enumerate()
            .map(|(i, socket)| {
                let sender = i < spec.local_senders;
                scope.spawn(move || participant(spec, socket, i, sender, barrier_deadline))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(BenchError::Setup("participant panicked".into())))
            })
            .collect()
    });
    let outcomes: Vec<Outcome> = outcomes.into_iter().collect::<Result<_, _>>()?;
    Ok(outcomes.iter().map(|o| line(spec, o)).collect())
}

fn participant(
    spec: &Spec,
    socket: &std::path::Path,
    index: usize,
    sender: bool,
    barrier_deadline: Instant,
) -> Result<Outcome, BenchError> {
    let stream = u32::try_from(index).unwrap_or(u32::MAX);
    let mut s = Session::open(socket, stream, &spec.group, spec.participants)?;
    s.barrier(barrier_deadline)?;
    let daemon = Daemon::beside(socket);
    let cpu0 = daemon.and_then(|d| d.cpu_us());
    let (mut sent, mut try_again, mut send_secs) = (0u64, 0u64, 0.0);
    let start = Instant::now();
    if sender {
        let mut buf = Session::buffer(spec.size_bytes);
        let end = start + Duration::from_secs_f64(spec.secs);
        loop {
            if Instant::now() >= end {
                break;
            }
            s.header(Kind::Data, sent, 0).write(&mut buf);
            try_again += s.send(&buf, spec.backoff)?;
            sent += 1;
            if sent % SENDS_PER_DISPATCH == 0 {
                s.drain()?;
                s.tend_barrier()?;
            }
        }
        send_secs = start.elapsed().as_secs_f64();
        let mut end_msg = [0u8; HEADER_BYTES];
        s.header(Kind::End, 0, sent).write(&mut end_msg);
        try_again += s.send(&end_msg, spec.backoff)?;
    }
    let deadline = start + Duration::from_secs_f64(spec.secs) + END_PATIENCE;
    while s.ends() < spec.senders && Instant::now() < deadline {
        s.tend_barrier()?;
        s.pump(Duration::from_millis(50))?;
    }
    let cpu1 = daemon.and_then(|d| d.cpu_us());
    Ok(Outcome {
        complete: s.ends() >= spec.senders,
        session: s,
        sender,
        sent,
        send_secs,
        try_again,
        daemon_cpu_us: cpu0.zip(cpu1).map(|(a, b)| b.saturating_sub(a)),
        daemon,
    })
}

fn line(spec: &Spec, o: &Outcome) -> Line {
    let s = &o.session;
    let window = s
        .data_window
        .map_or(0.0, |(a, b)| b.duration_since(a).as_secs_f64());
    let rate = |n: f64| (window > 0.0).then(|| n / window);
    let mem = o.daemon.and_then(|d| d.memory());
    #[allow(clippy::cast_precision_loss)]
    let (msgs, bytes) = (s.data_msgs as f64, s.data_bytes as f64);
    #[allow(clippy::cast_precision_loss)]
    let cpu_per_msg = o
        .daemon_cpu_us
        .filter(|_| s.data_msgs > 0)
        .map(|us| us as f64 / msgs);
    let mut l = Line::default()
        .put("result", if o.complete { "ok" } else { "incomplete" })
        .put("impl", "ais")
        .put("mode", "tput")
        .put(
            "label",
            if spec.label.is_empty() {
                "-"
            } else {
                &spec.label
            },
        )
        .put("node", s.me.node_id)
        .put("sender", u8::from(o.sender))
        .put("size", super::message::message_bytes(spec.size_bytes))
        .put("nsenders", spec.senders)
        .put("msgs", s.data_msgs)
        .put("bytes", s.data_bytes)
        .num("window_s", Some(window), 3)
        .num("msgs_per_s", rate(msgs), 0)
        .num("MB_per_s", rate(bytes).map(|b| b / 1e6), 2)
        .put("lost", s.lost())
        .put("fifo_viol", s.fifo_violations())
        .put("order_hash", format!("{:016x}", s.order.value()))
        .num("cpu_us_per_msg", cpu_per_msg, 2)
        .put(
            "daemon_pid",
            o.daemon.map_or("NA".to_string(), |d| d.pid.to_string()),
        )
        .put(
            "rss_kib",
            mem.map_or("NA".to_string(), |m| m.rss_kib.to_string()),
        )
        .put(
            "hwm_kib",
            mem.map_or("NA".to_string(), |m| m.hwm_kib.to_string()),
        );
    if o.sender {
        #[allow(clippy::cast_precision_loss)]
        let send_rate = (o.send_secs > 0.0).then(|| o.sent as f64 / o.send_secs);
        l = l
            .put("sent", o.sent)
            .num("send_s", Some(o.send_secs), 3)
            .num("send_msgs_per_s", send_rate, 0)
            .put("try_again", o.try_again);
    }
    l
}
