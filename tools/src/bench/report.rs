//! The table: medians over repetitions of every measured figure, ours beside
//! corosync's, with the ratios the targets are stated in.
//!
//! Input: the `key=value` lines of our runs (`impl=ais`, `impl=udp`) and,
//! when corosync was measured in the same run, the lines of its harness's
//! `raw.txt` (`transport=udpu|knet`, no `impl`). Each line may carry
//! `rep=N`. Without corosync lines the table shows the figures of the
//! harness's README instead, labelled as not measured in this run.
//!
//! Conventions, as in the corosync harness: throughput is what node 2
//! delivers (a receiver when node 1 is the only sender); 1 MB = 1e6 B;
//! medians over repetitions with (min..max, n).

use std::collections::BTreeSet;
use std::fmt::Write;

use super::stats::median;
use super::Line;

/// The corosync harness's README figures: msgs/s at node 2 by (size,
/// senders) for knet and udpu.
const REF_TPUT: &[(u64, u64, f64, f64)] = &[
    (64, 1, 20_600.0, 49_000.0),
    (1024, 1, 15_900.0, 20_500.0),
    (8192, 1, 5_500.0, 3_500.0),
    (65000, 1, 832.0, 418.0),
    (64, 3, 21_000.0, 37_100.0),
    (1024, 3, 14_100.0, 21_200.0),
    (8192, 3, 5_800.0, 1_200.0),
    (65000, 3, 706.0, 44.0),
];
/// README: self-delivery latency p50 / p99 at 64 B, us: (knet, udpu).
const REF_LAT_P50: (f64, f64) = (588.0, 263.0);
const REF_LAT_P99: (f64, f64) = (3144.0, 534.0);
/// README: kill -9 to new configuration, ms (defaults: token 3650 ms).
const REF_KILL_MS: f64 = 7670.0;
/// README: SIGTERM to new configuration, ms: (knet, udpu).
const REF_TERM_MS: (f64, f64) = (102.0, 202.0);
/// README: raw loopback UDP datagrams/s by size.
const REF_UDP: &[(u64, f64)] = &[
    (64, 183_000.0),
    (1024, 157_000.0),
    (8192, 120_000.0),
    (65000, 55_000.0),
];

/// Targets of issue #7.
const TARGET_TPUT_RATIO: f64 = 3.0;
const TARGET_LAT_RATIO: f64 = 0.5;
const TARGET_KILL_MS: f64 = 1500.0;
const TARGET_TERM_MS: f64 = 100.0;
const TARGET_RSS_KIB: f64 = 32.0 * 1024.0;

/// Median, min, max and count of some values.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Summary {
    median: f64,
    min: f64,
    max: f64,
    n: usize,
}

impl Summary {
    fn of(values: &[f64]) -> Option<Summary> {
        let v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        Some(Summary {
            median: median(&v)?,
            min: v.iter().copied().fold(f64::INFINITY, f64::min),
            max: v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            n: v.len(),
        })
    }

    fn show(self, decimals: usize) -> String {
        format!(
            "{:.d$} ({:.d$}..{:.d$}, {})",
            self.median,
            self.min,
            self.max,
            self.n,
            d = decimals
        )
    }
}

/// Where a line comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source<'a> {
    Ais,
    Udp,
    Corosync(&'a str),
}

fn source(l: &Line) -> Option<Source<'_>> {
    match l.get("impl") {
        Some("ais") => Some(Source::Ais),
        Some("udp") => Some(Source::Udp),
        Some(_) => None,
        None => l.get("transport").map(Source::Corosync),
    }
}

/// The lines of `src` and `mode`.
fn select<'a>(rows: &'a [Line], src: Source<'_>, mode: &str) -> Vec<&'a Line> {
    rows.iter()
        .filter(|l| source(l) == Some(src) && l.get("mode") == Some(mode))
        .collect()
}

fn numbers(lines: &[&Line], key: &str) -> Vec<f64> {
    lines.iter().filter_map(|l| l.number(key)).collect()
}

fn is(l: &Line, key: &str, value: u64) -> bool {
    l.number(key) == Some(value as f64)
}

/// Throughput lines of one (size, senders) at node 2.
fn tput_node2<'a>(rows: &'a [Line], src: Source<'_>, size: u64, k: u64) -> Vec<&'a Line> {
    select(rows, src, "tput")
        .into_iter()
        .filter(|l| is(l, "size", size) && is(l, "nsenders", k) && is(l, "node", 2))
        .collect()
}

/// "ok", or what went wrong over every line of one (size, senders).
fn tput_checks(rows: &[Line], src: Source<'_>, size: u64, k: u64) -> String {
    let sel: Vec<&Line> = select(rows, src, "tput")
        .into_iter()
        .filter(|l| is(l, "size", size) && is(l, "nsenders", k))
        .collect();
    let bad = sel
        .iter()
        .filter(|l| {
            l.get("result") != Some("ok")
                || l.number("lost") != Some(0.0)
                || l.number("fifo_viol") != Some(0.0)
        })
        .count();
    let reps: BTreeSet<&str> = sel.iter().map(|l| l.get("rep").unwrap_or("1")).collect();
    let same_order = reps.iter().all(|rep| {
        sel.iter()
            .filter(|l| l.get("rep").unwrap_or("1") == *rep)
            .map(|l| l.get("order_hash"))
            .collect::<BTreeSet<_>>()
            .len()
            == 1
    });
    let mut s = if bad == 0 {
        "ok".to_string()
    } else {
        format!("{bad} BAD (loss, FIFO or incomplete)")
    };
    s.push_str(if same_order {
        ", one order"
    } else {
        ", ORDER DIFFERS"
    });
    s
}

/// Corosync transports measured in these rows.
fn transports(rows: &[Line]) -> Vec<String> {
    let set: BTreeSet<String> = rows
        .iter()
        .filter_map(|l| match source(l) {
            Some(Source::Corosync(t)) => Some(t.to_string()),
            _ => None,
        })
        .collect();
    set.into_iter().collect()
}

fn fmt_opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{v:.decimals$}"))
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

/// The whole table for `rows`.
pub fn table(rows: &[Line]) -> String {
    let mut out = String::new();
    let trs = transports(rows);
    let measured = !trs.is_empty();
    let coro_label = if measured {
        format!("corosync measured in this run ({})", trs.join(", "))
    } else {
        "corosync NOT measured in this run: reference figures from shared/bench/corosync/README.md \
         (another run; this machine may differ, compare with care)"
            .to_string()
    };
    let reps = rows
        .iter()
        .filter_map(|l| l.number("rep"))
        .fold(0.0_f64, f64::max);
    let _ = writeln!(
        out,
        "ais-bench: 3 aisexec nodes on loopback; medians over {reps} repetitions (min..max, n)"
    );
    let _ = writeln!(out, "{coro_label}");
    let _ = writeln!(out);

    // ------------------------------------------------------------ throughput
    let _ = writeln!(
        out,
        "Throughput: msgs/s delivered at node 2 (1 sender: node 1; 3: every node); MB/s with 1 MB = 1e6 B"
    );
    let coro_cols: Vec<String> = if measured {
        trs.clone()
    } else {
        vec!["knet".into(), "udpu".into()]
    };
    let mut head = format!(
        "{:>6} {:>3} | {:>24} {:>8} {:>7} |",
        "size", "snd", "ais msgs/s", "MB/s", "cpu us"
    );
    for t in &coro_cols {
        let _ = write!(
            head,
            " {:>11}",
            format!("coro {t}{}", if measured { "" } else { "*" })
        );
    }
    let _ = write!(head, " | {:>9} {:>8} | checks", "ais/coro", "ais/udp");
    let _ = writeln!(out, "{head}");
    let sizes: BTreeSet<u64> = rows
        .iter()
        .filter(|l| l.get("mode") == Some("tput"))
        .filter_map(|l| l.number("size"))
        .map(|s| s as u64)
        .collect();
    for k in [1u64, 3] {
        for &size in &sizes {
            let ours = tput_node2(rows, Source::Ais, size, k);
            if ours.is_empty() {
                continue;
            }
            let m = Summary::of(&numbers(&ours, "msgs_per_s"));
            let mb = Summary::of(&numbers(&ours, "MB_per_s"));
            let all_ours: Vec<&Line> = select(rows, Source::Ais, "tput")
                .into_iter()
                .filter(|l| is(l, "size", size) && is(l, "nsenders", k))
                .collect();
            let cpu = Summary::of(&numbers(&all_ours, "cpu_us_per_msg"));
            let mut line = format!(
                "{:>6} {:>3} | {:>24} {:>8} {:>7} |",
                size,
                k,
                m.map_or("-".into(), |s| s.show(0)),
                fmt_opt(mb.map(|s| s.median), 2),
                fmt_opt(cpu.map(|s| s.median), 1)
            );
            let mut best: Option<f64> = None;
            for t in &coro_cols {
                let v = if measured {
                    Summary::of(&numbers(
                        &tput_node2(rows, Source::Corosync(t), size, k),
                        "msgs_per_s",
                    ))
                    .map(|s| s.median)
                } else {
                    REF_TPUT.iter().find(|r| r.0 == size && r.1 == k).map(|r| {
                        if t == "knet" {
                            r.2
                        } else {
                            r.3
                        }
                    })
                };
                best = match (best, v) {
                    (Some(b), Some(v)) => Some(b.max(v)),
                    (b, v) => b.or(v),
                };
                let _ = write!(line, " {:>11}", fmt_opt(v, 0));
            }
            let udp = udp_rate(rows, size).or_else(|| {
                if measured {
                    None
                } else {
                    REF_UDP.iter().find(|r| r.0 == size).map(|r| r.1)
                }
            });
            let r = ratio(m.map(|s| s.median), best);
            let _ = write!(
                line,
                " | {:>9} {:>8} | {}",
                r.map_or("-".into(), |r| format!(
                    "{r:.2}x{}",
                    if r >= TARGET_TPUT_RATIO { "" } else { "!" }
                )),
                fmt_opt(ratio(m.map(|s| s.median), udp), 2),
                tput_checks(rows, Source::Ais, size, k)
            );
            let _ = writeln!(out, "{line}");
        }
    }
    let _ = writeln!(
        out,
        "  ais/coro: against the best corosync transport; target >= {TARGET_TPUT_RATIO}x ('!' = missed).{}",
        if measured { "" } else { " * = reference, not measured here" }
    );
    let _ = writeln!(
        out,
        "  ais/udp: against raw loopback datagrams/s of that size; cpu us: daemon CPU per delivered message (median over nodes and runs)"
    );
    if measured {
        for t in &trs {
            let mut bad = Vec::new();
            for k in [1u64, 3] {
                for &size in &sizes {
                    let c = tput_checks(rows, Source::Corosync(t), size, k);
                    if !c.starts_with("ok, one order")
                        && !tput_node2(rows, Source::Corosync(t), size, k).is_empty()
                    {
                        bad.push(format!("{size}/{k}: {c}"));
                    }
                }
            }
            if !bad.is_empty() {
                let _ = writeln!(out, "  corosync {t} checks: {}", bad.join("; "));
            }
        }
    }
    let _ = writeln!(out);

    // ------------------------------------------------------------ latency
    let _ = writeln!(
        out,
        "Latency: one message at a time from node 1, self-delivery (us)"
    );
    let lat_sizes: BTreeSet<u64> = rows
        .iter()
        .filter(|l| l.get("mode") == Some("lat"))
        .filter_map(|l| l.number("size"))
        .map(|s| s as u64)
        .collect();
    for &size in &lat_sizes {
        let own: Vec<&Line> = select(rows, Source::Ais, "lat")
            .into_iter()
            .filter(|l| is(l, "size", size) && l.get("kind") == Some("self"))
            .collect();
        let oneway: Vec<&Line> = select(rows, Source::Ais, "lat")
            .into_iter()
            .filter(|l| is(l, "size", size) && l.get("kind") == Some("oneway"))
            .collect();
        if own.is_empty() {
            continue;
        }
        let p50 = Summary::of(&numbers(&own, "p50_us"));
        let p99 = Summary::of(&numbers(&own, "p99_us"));
        let max = Summary::of(&numbers(&own, "max_us"));
        let ow = Summary::of(&numbers(&oneway, "p50_us"));
        let _ = writeln!(
            out,
            "  {size:>6} B  ais p50 {}  p99 {}  max {}  one-way p50 {}",
            p50.map_or("-".into(), |s| s.show(1)),
            p99.map_or("-".into(), |s| s.show(1)),
            max.map_or("-".into(), |s| s.show(1)),
            ow.map_or("-".into(), |s| s.show(1)),
        );
        let mut best: Option<f64> = None;
        let mut coro = String::new();
        if measured {
            for t in &trs {
                let sel: Vec<&Line> = select(rows, Source::Corosync(t), "lat")
                    .into_iter()
                    .filter(|l| is(l, "size", size) && l.get("kind") == Some("self"))
                    .collect();
                let c50 = Summary::of(&numbers(&sel, "p50_us")).map(|s| s.median);
                let c99 = Summary::of(&numbers(&sel, "p99_us")).map(|s| s.median);
                if let Some(v) = c50 {
                    best = Some(best.map_or(v, |b: f64| b.min(v)));
                }
                let _ = write!(
                    coro,
                    "  {t} p50 {} p99 {}",
                    fmt_opt(c50, 1),
                    fmt_opt(c99, 1)
                );
            }
        } else if size == 64 {
            best = Some(REF_LAT_P50.0.min(REF_LAT_P50.1));
            let _ = write!(
                coro,
                "  knet* p50 {} p99 {}  udpu* p50 {} p99 {}",
                REF_LAT_P50.0, REF_LAT_P99.0, REF_LAT_P50.1, REF_LAT_P99.1
            );
        }
        if !coro.is_empty() {
            let r = ratio(p50.map(|s| s.median), best);
            let _ =
                writeln!(
                out,
                "           corosync{coro}  => ais/coro p50 {} (target <= {TARGET_LAT_RATIO}{})",
                fmt_opt(r, 2),
                if r.is_some_and(|r| r <= TARGET_LAT_RATIO) { "" } else { ", MISSED" }
            );
        }
    }
    let ring = select(rows, Source::Udp, "udp_ring");
    if let Some(floor) = Summary::of(&numbers(&ring, "p50_us")) {
        let hops = ring.first().and_then(|l| l.number("hops")).unwrap_or(0.0);
        let _ = writeln!(
            out,
            "  floor: one datagram round a ring of {hops} sockets (no protocol work), \
             rotation p50 {} us",
            floor.show(1)
        );
    }
    let _ = writeln!(out);

    // ------------------------------------------------------------ failover
    let _ = writeln!(
        out,
        "Failure detection: signal node 3's daemon, survivors 1 and 2 (ms from the kill)"
    );
    for (sig, name, target) in [
        (9u64, "kill -9", TARGET_KILL_MS),
        (15, "SIGTERM", TARGET_TERM_MS),
    ] {
        let ours: Vec<&Line> = select(rows, Source::Ais, "failover")
            .into_iter()
            .filter(|l| is(l, "sig", sig))
            .collect();
        if ours.is_empty() {
            continue;
        }
        let ring = Summary::of(&numbers(&ours, "detect_ring_ms"));
        let evs = Summary::of(&numbers(&ours, "detect_evs_ms"));
        let worst = ring
            .map(|s| s.max)
            .into_iter()
            .chain(evs.map(|s| s.max))
            .fold(f64::NAN, f64::max);
        let _ = writeln!(
            out,
            "  {name:<8} ais ring {}  EVS confchg {}  (target < {target} ms{})",
            ring.map_or("-".into(), |s| s.show(1)),
            evs.map_or("-".into(), |s| s.show(1)),
            if worst < target { "" } else { ", MISSED" }
        );
        if measured {
            for t in &trs {
                let sel: Vec<&Line> = select(rows, Source::Corosync(t), "failover")
                    .into_iter()
                    .filter(|l| is(l, "sig", sig))
                    .collect();
                let tot = Summary::of(&numbers(&sel, "detect_totem_ms"));
                let cpg = Summary::of(&numbers(&sel, "detect_cpg_ms"));
                let _ = writeln!(
                    out,
                    "  {:<8} corosync {t} totem {}  cpg confchg {}  => ais/coro (EVS/cpg) {}",
                    "",
                    tot.map_or("-".into(), |s| s.show(1)),
                    cpg.map_or("-".into(), |s| s.show(1)),
                    fmt_opt(ratio(evs.map(|s| s.median), cpg.map(|s| s.median)), 3)
                );
            }
        } else {
            let r = if sig == 9 {
                (REF_KILL_MS, REF_KILL_MS)
            } else {
                REF_TERM_MS
            };
            let _ = writeln!(
                out,
                "  {:<8} corosync* knet {} udpu {} (its defaults: token 3650 ms, consensus 4380 ms)",
                "", r.0, r.1
            );
        }
    }
    if let Some(env) = select(rows, Source::Ais, "env").first() {
        let _ = writeln!(
            out,
            "  ours: token {} ms (consensus 1.2 x token), sched_rr {}, accelerated_window {}",
            env.get("token_ms").unwrap_or("?"),
            env.get("sched_rr").unwrap_or("?"),
            env.get("accelerated_window").unwrap_or("0")
        );
    }
    let _ = writeln!(out);

    // ------------------------------------------------------------ memory
    let rss: Vec<&Line> = select(rows, Source::Ais, "rss");
    let idle = Summary::of(&numbers(
        &rss.iter()
            .copied()
            .filter(|l| l.get("phase") == Some("idle"))
            .collect::<Vec<_>>(),
        "rss_kib",
    ));
    let after = Summary::of(&numbers(
        &rss.iter()
            .copied()
            .filter(|l| l.get("phase") == Some("after"))
            .collect::<Vec<_>>(),
        "rss_kib",
    ));
    let peak = numbers(&rss, "hwm_kib")
        .into_iter()
        .chain(numbers(&select(rows, Source::Ais, "tput"), "hwm_kib"))
        .fold(f64::NAN, f64::max);
    if idle.is_some() || peak.is_finite() {
        let mib = |k: f64| k / 1024.0;
        let _ = writeln!(
            out,
            "Memory (daemon, MiB): idle RSS {}  RSS after the load {}  peak VmHWM {}  (target < {} MiB{})",
            idle.map_or("-".into(), |s| format!("{:.1} ({:.1}..{:.1})", mib(s.median), mib(s.min), mib(s.max))),
            after.map_or("-".into(), |s| format!("{:.1} ({:.1}..{:.1})", mib(s.median), mib(s.min), mib(s.max))),
            fmt_opt(peak.is_finite().then(|| mib(peak)), 1),
            TARGET_RSS_KIB / 1024.0,
            if peak.is_finite() && peak < TARGET_RSS_KIB { "" } else { ", MISSED" }
        );
        let _ = writeln!(out);
    }

    // ------------------------------------------------------------ UDP
    let udp = select(rows, Source::Udp, "udp");
    if !udp.is_empty() {
        let _ = writeln!(
            out,
            "Raw loopback UDP ceiling (one datagram per syscall, received):"
        );
        let sizes: BTreeSet<u64> = udp
            .iter()
            .filter_map(|l| l.number("size"))
            .map(|s| s as u64)
            .collect();
        for size in sizes {
            let sel: Vec<&Line> = udp
                .iter()
                .copied()
                .filter(|l| is(l, "size", size))
                .collect();
            let d = Summary::of(&numbers(&sel, "dgrams_per_s"));
            let mb = Summary::of(&numbers(&sel, "MB_per_s"));
            let reference = REF_UDP.iter().find(|r| r.0 == size).map(|r| r.1);
            let _ = writeln!(
                out,
                "  {size:>6} B  {} datagrams/s  {} MB/s   (README machine: {})",
                d.map_or("-".into(), |s| s.show(0)),
                fmt_opt(mb.map(|s| s.median), 1),
                fmt_opt(reference, 0)
            );
        }
    }
    out
}

/// Median received datagrams/s of the UDP ceiling at `size`.
fn udp_rate(rows: &[Line], size: u64) -> Option<f64> {
    let sel: Vec<&Line> = select(rows, Source::Udp, "udp")
        .into_iter()
        .filter(|l| is(l, "size", size))
        .collect();
    Summary::of(&numbers(&sel, "dgrams_per_s")).map(|s| s.median)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(text: &str) -> Vec<Line> {
        text.lines().map(Line::parse).collect()
    }

    #[test]
    fn ours_against_the_reference_when_corosync_was_not_measured() {
        let r = rows(
            "rep=1 result=ok impl=ais mode=tput node=1 size=64 nsenders=1 msgs_per_s=150000 MB_per_s=9.6 lost=0 fifo_viol=0 order_hash=aa cpu_us_per_msg=3
rep=1 result=ok impl=ais mode=tput node=2 size=64 nsenders=1 msgs_per_s=147000 MB_per_s=9.4 lost=0 fifo_viol=0 order_hash=aa cpu_us_per_msg=3
rep=2 result=ok impl=ais mode=tput node=2 size=64 nsenders=1 msgs_per_s=153000 MB_per_s=9.8 lost=0 fifo_viol=0 order_hash=bb cpu_us_per_msg=3
rep=1 result=ok impl=udp mode=udp size=64 dgrams_per_s=300000 MB_per_s=19.2",
        );
        let t = table(&r);
        assert!(t.contains("NOT measured"), "{t}");
        assert!(t.contains("150000 (147000..153000, 2)"), "{t}");
        // 150000 / 49000 (udpu reference) = 3.06x: target met.
        assert!(t.contains("3.06x "), "{t}");
        assert!(t.contains("0.50"), "ais/udp: {t}");
        assert!(t.contains("ok, one order"), "{t}");
    }

    #[test]
    fn measured_corosync_gives_ratios_and_differing_orders_are_flagged() {
        let r = rows(
            "rep=1 result=ok impl=ais mode=tput node=1 size=1024 nsenders=3 msgs_per_s=40000 MB_per_s=41 lost=0 fifo_viol=0 order_hash=aa
rep=1 result=ok impl=ais mode=tput node=2 size=1024 nsenders=3 msgs_per_s=40000 MB_per_s=41 lost=0 fifo_viol=0 order_hash=ab
rep=1 transport=udpu result=ok mode=tput node=2 size=1024 nsenders=3 msgs_per_s=20000 MB_per_s=20 lost=0 fifo_viol=0 order_hash=cc
rep=1 transport=udpu result=ok mode=lat node=1 kind=self size=64 p50_us=200 p99_us=400
rep=1 result=ok impl=ais mode=lat node=1 kind=self size=64 p50_us=80 p99_us=150 max_us=900
rep=1 result=ok impl=udp mode=udp_ring hops=3 size=64 rotations=100 p50_us=61.5 p99_us=90
rep=2 result=ok impl=udp mode=udp_ring hops=3 size=64 rotations=100 p50_us=63.5 p99_us=95
rep=1 result=ok impl=ais mode=failover sig=9 survivor=1 detect_ring_ms=1300 detect_evs_ms=1320
rep=1 transport=udpu result=ok mode=failover sig=9 survivor=1 detect_totem_ms=7600 detect_cpg_ms=7700",
        );
        let t = table(&r);
        assert!(t.contains("measured in this run (udpu)"), "{t}");
        assert!(t.contains("2.00x!"), "missed 3x: {t}");
        assert!(t.contains("ORDER DIFFERS"), "{t}");
        assert!(t.contains("ais/coro p50 0.40 (target <= 0.5)"), "{t}");
        assert!(
            t.contains(
                "ring of 3 sockets (no protocol work), rotation p50 62.5 (61.5..63.5, 2) us"
            ),
            "{t}"
        );
        assert!(t.contains("1300.0 (1300.0..1300.0, 1)"), "{t}");
        assert!(!t.contains("kill -9  ais ring 1300.0 (1300.0..1300.0, 1)  EVS confchg 1320.0 (1320.0..1320.0, 1)  (target < 1500 ms, MISSED"), "{t}");
    }
}
