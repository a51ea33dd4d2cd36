//! The raw loopback UDP ceiling: what the kernel alone delivers between two
//! sockets on this machine, one datagram per system call, as the corosync
//! harness's README quotes it beside its figures.
//!
//! A sender thread `send`s `size`-byte datagrams on a connected socket as
//! fast as it can for `secs` seconds; a receiver thread `recv`s them on
//! another socket (4 MiB receive buffer asked, as the daemon asks).
//! Datagrams the receiver's buffer could not take are lost, so the rate
//! that counts is the received one. Threads of one process take the same
//! kernel path as two processes.
//!
//! [`ring`] measures the floor under a token ring's latency instead: one
//! datagram passed round a ring of sockets, each in a thread blocked in
//! `recv`, so every hop pays a wake-up, as every Totem hop does.

use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::sys::socket::{setsockopt, sockopt};

use super::stats::quantile;
use super::{BenchError, Line};

/// Receive and send buffer asked for, in bytes (the daemon's
/// `SOCKET_BUFFER_BYTES`).
const SOCKET_BUFFER_BYTES: usize = 4 << 20;

/// Largest UDP payload over IPv4.
pub const MAX_DATAGRAM_BYTES: usize = 65_507;

/// Measures datagrams of `size_bytes` for `secs` seconds.
///
/// # Errors
/// A socket could not be made, or `size_bytes` is above
/// [`MAX_DATAGRAM_BYTES`].
pub fn run(size_bytes: usize, secs: f64) -> Result<Line, BenchError> {
    if size_bytes == 0 || size_bytes > MAX_DATAGRAM_BYTES {
        return Err(BenchError::Setup(format!(
            "datagram size {size_bytes} not in 1..={MAX_DATAGRAM_BYTES}"
        )));
    }
    let io = |what: &'static str| move |e| BenchError::Io(what, e);
    let rx = UdpSocket::bind("127.0.0.1:0").map_err(io("bind"))?;
    let tx = UdpSocket::bind("127.0.0.1:0").map_err(io("bind"))?;
    // Buffers bigger than the default are a wish: the kernel caps them.
    let _ = setsockopt(&rx, sockopt::RcvBuf, &SOCKET_BUFFER_BYTES);
    let _ = setsockopt(&tx, sockopt::SndBuf, &SOCKET_BUFFER_BYTES);
    tx.connect(rx.local_addr().map_err(io("local_addr"))?)
        .map_err(io("connect"))?;
    rx.set_read_timeout(Some(Duration::from_millis(100)))
        .map_err(io("set_read_timeout"))?;
    let sending = AtomicBool::new(true);
    let (sent, send_errors, (received, window)) = std::thread::scope(|scope| {
        let receiver = scope.spawn(|| {
            let mut buf = vec![0u8; MAX_DATAGRAM_BYTES + 1];
            let mut n = 0u64;
            let mut first: Option<Instant> = None;
            let mut last = Instant::now();
            loop {
                match rx.recv(&mut buf) {
                    Ok(_) => {
                        last = Instant::now();
                        first.get_or_insert(last);
                        n += 1;
                    }
                    Err(_) if !sending.load(Ordering::Relaxed) => break,
                    Err(_) => {}
                }
            }
            (
                n,
                first.map_or(0.0, |f| last.duration_since(f).as_secs_f64()),
            )
        });
        let payload = vec![0x5au8; size_bytes];
        let end = Instant::now() + Duration::from_secs_f64(secs);
        let (mut sent, mut errors) = (0u64, 0u64);
        while Instant::now() < end {
            match tx.send(&payload) {
                Ok(_) => sent += 1,
                Err(_) => errors += 1,
            }
        }
        sending.store(false, Ordering::Relaxed);
        let got = receiver.join().unwrap_or((0, 0.0));
        (sent, errors, got)
    });
    #[allow(clippy::cast_precision_loss)]
    let per_s = |n: u64| (window > 0.0).then(|| n as f64 / window);
    #[allow(clippy::cast_precision_loss)]
    let mb_s = per_s(received).map(|r| r * size_bytes as f64 / 1e6);
    #[allow(clippy::cast_precision_loss)]
    let sent_per_s = sent as f64 / secs;
    Ok(Line::default()
        .put("result", "ok")
        .put("impl", "udp")
        .put("mode", "udp")
        .put("size", size_bytes)
        .put("sent", sent)
        .put("send_errors", send_errors)
        .put("received", received)
        .num("window_s", Some(window), 3)
        .num("sent_per_s", Some(sent_per_s), 0)
        .num("dgrams_per_s", per_s(received), 0)
        .num("MB_per_s", mb_s, 1))
}

/// How long a ring hop may wait for the datagram before the run is
/// abandoned (a datagram lost on loopback would otherwise stop the ring).
const RING_PATIENCE: Duration = Duration::from_secs(2);

/// Passes one `size_bytes` datagram round a ring of `hops` sockets on
/// 127.0.0.1, one thread each blocked in `recv`, for `rotations` rotations
/// after a warm-up, and reports the rotation time (p50, p99): the least a
/// token rotation over `hops` processes can take on this machine, with no
/// protocol work at all.
///
/// # Errors
/// A socket could not be made, the arguments are out of range, or the
/// datagram did not come round within [`RING_PATIENCE`].
pub fn ring(hops: usize, size_bytes: usize, rotations: usize) -> Result<Line, BenchError> {
    if hops < 2 || rotations == 0 || size_bytes == 0 || size_bytes > MAX_DATAGRAM_BYTES {
        return Err(BenchError::Setup(format!(
            "ring of {hops} hops, {rotations} rotations of {size_bytes} B: \
             need 2+ hops, 1+ rotations, 1..={MAX_DATAGRAM_BYTES} B"
        )));
    }
    let io = |what: &'static str| move |e| BenchError::Io(what, e);
    let sockets = (0..hops)
        .map(|_| UdpSocket::bind("127.0.0.1:0").map_err(io("bind")))
        .collect::<Result<Vec<_>, _>>()?;
    // Not connected: a connected UDP socket takes datagrams from its peer
    // only, and here each hears from the one before and sends to the next.
    let mut next = Vec::with_capacity(hops);
    for (i, s) in sockets.iter().enumerate() {
        next.push(
            sockets[(i + 1) % hops]
                .local_addr()
                .map_err(io("local_addr"))?,
        );
        s.set_read_timeout(Some(RING_PATIENCE))
            .map_err(io("set_read_timeout"))?;
    }
    let warmup = (rotations / 10).max(10);
    let total = warmup + rotations;
    let results: Vec<Result<Vec<u64>, BenchError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = sockets
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let to = next[i];
                scope.spawn(move || {
                    let mut buf = vec![0u8; MAX_DATAGRAM_BYTES + 1];
                    let mut laps = Vec::with_capacity(if i == 0 { rotations } else { 0 });
                    let mut last = Instant::now();
                    if i == 0 {
                        s.send_to(&buf[..size_bytes], to).map_err(io("send"))?;
                    }
                    for lap in 0..total {
                        let n = s.recv(&mut buf).map_err(io("recv"))?;
                        if i == 0 {
                            let now = Instant::now();
                            if lap >= warmup {
                                laps.push(
                                    u64::try_from(now.duration_since(last).as_nanos())
                                        .unwrap_or(u64::MAX),
                                );
                            }
                            last = now;
                            if lap + 1 == total {
                                break;
                            }
                        }
                        s.send_to(&buf[..n], to).map_err(io("send"))?;
                    }
                    Ok(laps)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(BenchError::Setup("ring hop panicked".into())))
            })
            .collect()
    });
    let mut laps = Vec::new();
    for r in results {
        laps.extend(r?);
    }
    laps.sort_unstable();
    #[allow(clippy::cast_precision_loss)]
    let us = |p: f64| quantile(&laps, p).map(|ns| ns as f64 / 1e3);
    Ok(Line::default()
        .put("result", "ok")
        .put("impl", "udp")
        .put("mode", "udp_ring")
        .put("hops", hops)
        .put("size", size_bytes)
        .put("rotations", laps.len())
        .num("p50_us", us(0.5), 1)
        .num("p99_us", us(0.99), 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_run_moves_datagrams() {
        let l = run(64, 0.05).unwrap();
        assert!(l.number("received").unwrap() > 0.0, "{l}");
        assert!(run(0, 0.01).is_err());
        assert!(run(MAX_DATAGRAM_BYTES + 1, 0.01).is_err());
    }

    #[test]
    fn a_ring_comes_round_once_per_rotation() {
        let l = ring(3, 64, 200).unwrap();
        assert_eq!(l.number("rotations"), Some(200.0), "{l}");
        let (p50, p99) = (l.number("p50_us").unwrap(), l.number("p99_us").unwrap());
        assert!(p50 > 0.0 && p50 <= p99, "{l}");
        assert!(ring(1, 64, 10).is_err());
        assert!(ring(3, 0, 10).is_err());
    }
}
