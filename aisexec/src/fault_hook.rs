//! TEST-ONLY packet faults on the receive path: drop and delay datagrams
//! from peers, for the soak test (`make soak-cluster`, docs/soak.md).
//!
//! Inert unless the environment variable [`ENV_VAR`]
//! (`AISEXEC_TEST_FAULTS`) is set when the daemon starts: without it
//! [`FaultHook::from_env`] returns a hook that passes every datagram
//! through untouched, allocates nothing and reads no clock. With it the
//! daemon logs a warning at start, since a node that drops packets on
//! purpose does not belong in production.
//!
//! The variable holds either a fault spec, fixed for the process's life:
//!
//! ```text
//! AISEXEC_TEST_FAULTS=drop=0.05,delay=0.2,delay_ms=20,seed=7
//! ```
//!
//! or `file=PATH`, a control file holding such a spec, re-read when its
//! modification time or length changes (checked at most every
//! [`CONTROL_CHECK_INTERVAL`]), so a test driver makes faults come and go at
//! runtime. A missing or empty file means no faults; a malformed one is
//! logged and means no faults.
//!
//! Keys: `drop` (probability that a received datagram is discarded),
//! `delay` (probability that one is held back), `delay_ms` (the longest
//! hold; each held datagram waits a uniform 1..=delay_ms ms, so delays also
//! reorder), `seed` (the generator's seed; default 1).
//!
//! Delay is driven by the event loop, no thread: held datagrams wait in a
//! queue of at most [`MAX_HELD`] (a datagram that finds it full passes at
//! once, counted), the loop's poll timeout is bounded by
//! [`FaultHook::release_in`], and [`FaultHook::take_due`] hands back the
//! datagrams whose time came, before the socket is read again.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;

/// The environment variable that turns the hook on.
pub const ENV_VAR: &str = "AISEXEC_TEST_FAULTS";

/// Most datagrams held back at once.
pub const MAX_HELD: usize = 512;

/// Longest delay a spec may ask for, in milliseconds (longer would hold
/// packets across token timeouts for no test's benefit).
pub const MAX_DELAY_MS: u64 = 5_000;

/// How often the control file's metadata is looked at.
pub const CONTROL_CHECK_INTERVAL: Duration = Duration::from_millis(100);

/// Counters of the hook (zero when inert).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FaultStats {
    /// Datagrams discarded.
    pub dropped: u64,
    /// Datagrams held back.
    pub delayed: u64,
    /// Datagrams that were to be held but found the queue full.
    pub held_full: u64,
}

/// What faults to apply; probabilities in parts per million.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultSpec {
    /// Chance a datagram is dropped, per million.
    pub drop_ppm: u32,
    /// Chance a datagram is delayed, per million.
    pub delay_ppm: u32,
    /// Longest delay, in milliseconds.
    pub delay_ms: u64,
    /// Seed of the generator.
    pub seed: u64,
}

impl FaultSpec {
    /// Parses `key=value,...` (whitespace and newlines count as commas).
    ///
    /// # Errors
    /// An unknown key, a value that is not a number, a probability outside
    /// 0..=1, a delay above [`MAX_DELAY_MS`].
    pub fn parse(text: &str) -> Result<FaultSpec, String> {
        let mut spec = FaultSpec {
            seed: 1,
            ..FaultSpec::default()
        };
        for item in text
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
        {
            let (key, value) = item
                .split_once('=')
                .ok_or_else(|| format!("`{item}`: expected key=value"))?;
            match key {
                "drop" => spec.drop_ppm = parse_probability(value)?,
                "delay" => spec.delay_ppm = parse_probability(value)?,
                "delay_ms" => {
                    let ms: u64 = value
                        .parse()
                        .map_err(|_| format!("delay_ms `{value}` is not a number"))?;
                    if ms > MAX_DELAY_MS {
                        return Err(format!("delay_ms {ms} is above {MAX_DELAY_MS}"));
                    }
                    spec.delay_ms = ms;
                }
                "seed" => {
                    spec.seed = value
                        .parse()
                        .map_err(|_| format!("seed `{value}` is not a number"))?;
                }
                _ => return Err(format!("unknown key `{key}`")),
            }
        }
        Ok(spec)
    }

    fn is_quiet(&self) -> bool {
        self.drop_ppm == 0 && (self.delay_ppm == 0 || self.delay_ms == 0)
    }
}

fn parse_probability(value: &str) -> Result<u32, String> {
    let p: f64 = value
        .parse()
        .map_err(|_| format!("probability `{value}` is not a number"))?;
    if !(0.0..=1.0).contains(&p) {
        return Err(format!("probability {p} is outside 0..=1"));
    }
    // In 0..=1e6 after the check above: the cast cannot truncate.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Ok((p * 1e6).round() as u32)
}

/// Where the spec comes from.
#[derive(Debug)]
enum Source {
    Fixed,
    File {
        path: PathBuf,
        next_check: Instant,
        seen: Option<(SystemTime, u64)>,
    },
}

/// The state of an active hook.
#[derive(Debug)]
struct Active {
    source: Source,
    spec: FaultSpec,
    rng: u64,
    /// Held datagrams with their release time, in release order.
    held: VecDeque<(Instant, Bytes)>,
    stats: FaultStats,
}

/// The hook: inert, or applying a [`FaultSpec`].
#[derive(Debug, Default)]
pub struct FaultHook {
    active: Option<Box<Active>>,
}

impl FaultHook {
    /// An inert hook.
    pub fn inert() -> FaultHook {
        FaultHook::default()
    }

    /// The hook [`ENV_VAR`] asks for; inert without it. A malformed
    /// variable is logged and leaves the hook inert.
    pub fn from_env() -> FaultHook {
        let Some(value) = std::env::var_os(ENV_VAR) else {
            return FaultHook::inert();
        };
        let value = value.to_string_lossy().into_owned();
        match FaultHook::from_setting(&value, Instant::now()) {
            Ok(hook) => {
                log::warn!(
                    "{ENV_VAR} is set ({value}): TEST-ONLY packet faults are active on this node"
                );
                hook
            }
            Err(e) => {
                log::error!("{ENV_VAR}={value} ignored: {e}");
                FaultHook::inert()
            }
        }
    }

    /// The hook for a setting (`file=PATH` or a spec).
    ///
    /// # Errors
    /// A malformed spec.
    pub fn from_setting(value: &str, now: Instant) -> Result<FaultHook, String> {
        let (source, spec) = match value.trim().strip_prefix("file=") {
            Some(path) => (
                Source::File {
                    path: PathBuf::from(path),
                    next_check: now,
                    seen: None,
                },
                FaultSpec::default(),
            ),
            None => (Source::Fixed, FaultSpec::parse(value)?),
        };
        let mut active = Active {
            source,
            rng: 0,
            spec: FaultSpec::default(),
            held: VecDeque::new(),
            stats: FaultStats::default(),
        };
        active.set_spec(spec);
        Ok(FaultHook {
            active: Some(Box::new(active)),
        })
    }

    /// Whether the hook does anything at all.
    #[cfg(test)]
    pub fn is_active(&self) -> bool {
        self.active.is_some()
    }

    /// A datagram just received: `Some` to hand it on now, `None` when it
    /// was dropped or held back (see [`FaultHook::take_due`]).
    pub fn on_receive(&mut self, datagram: Bytes) -> Option<Bytes> {
        let Some(a) = self.active.as_deref_mut() else {
            return Some(datagram);
        };
        let now = Instant::now();
        a.refresh(now);
        if a.spec.is_quiet() {
            return Some(datagram);
        }
        if a.chance(a.spec.drop_ppm) {
            a.stats.dropped += 1;
            return None;
        }
        if a.spec.delay_ms > 0 && a.chance(a.spec.delay_ppm) {
            if a.held.len() >= MAX_HELD {
                a.stats.held_full += 1;
                return Some(datagram);
            }
            let ms = 1 + a.next() % a.spec.delay_ms;
            let at = now + Duration::from_millis(ms);
            // Keep release order: insert after every earlier-or-equal one.
            let pos = a.held.partition_point(|(t, _)| *t <= at);
            a.held.insert(pos, (at, datagram));
            a.stats.delayed += 1;
            return None;
        }
        Some(datagram)
    }

    /// A held datagram whose time came, if any.
    pub fn take_due(&mut self) -> Option<Bytes> {
        let a = self.active.as_deref_mut()?;
        let (at, _) = a.held.front()?;
        if *at > Instant::now() {
            return None;
        }
        a.held.pop_front().map(|(_, d)| d)
    }

    /// How long until the next held datagram is due (zero if one is);
    /// `None` when nothing is held.
    pub fn release_in(&self) -> Option<Duration> {
        let a = self.active.as_deref()?;
        let (at, _) = a.held.front()?;
        Some(at.saturating_duration_since(Instant::now()))
    }

    /// The counters.
    #[cfg(test)]
    pub fn stats(&self) -> FaultStats {
        self.active
            .as_deref()
            .map(|a| a.stats.clone())
            .unwrap_or_default()
    }
}

impl Active {
    fn set_spec(&mut self, spec: FaultSpec) {
        if spec != self.spec || self.rng == 0 {
            // splitmix64 of the seed: never zero for xorshift.
            self.rng = splitmix(spec.seed) | 1;
        }
        self.spec = spec;
    }

    /// Re-reads the control file if it changed.
    fn refresh(&mut self, now: Instant) {
        let Source::File {
            path,
            next_check,
            seen,
        } = &mut self.source
        else {
            return;
        };
        if now < *next_check {
            return;
        }
        *next_check = now + CONTROL_CHECK_INTERVAL;
        let meta = std::fs::metadata(&*path)
            .ok()
            .map(|m| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()));
        if meta == *seen {
            return;
        }
        *seen = meta;
        let text = std::fs::read_to_string(&*path).unwrap_or_default();
        let spec = match FaultSpec::parse(&text) {
            Ok(spec) => spec,
            Err(e) => {
                log::error!("fault control file {}: {e}; no faults", path.display());
                FaultSpec::default()
            }
        };
        log::info!(
            "test faults now: drop {} ppm, delay {} ppm up to {} ms (so far dropped {}, delayed {}, passed with the queue full {})",
            spec.drop_ppm,
            spec.delay_ppm,
            spec.delay_ms,
            self.stats.dropped,
            self.stats.delayed,
            self.stats.held_full
        );
        self.set_spec(spec);
    }

    /// xorshift64.
    fn next(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }

    fn chance(&mut self, ppm: u32) -> bool {
        ppm > 0 && self.next() % 1_000_000 < u64::from(ppm)
    }
}

fn splitmix(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: u8) -> Bytes {
        Bytes::from(vec![n])
    }

    #[test]
    fn inert_hook_passes_everything_and_holds_nothing() {
        let mut h = FaultHook::inert();
        assert!(!h.is_active());
        for n in 0..100 {
            assert_eq!(h.on_receive(d(n)), Some(d(n)));
        }
        assert_eq!(h.take_due(), None);
        assert_eq!(h.release_in(), None);
        assert_eq!(h.stats(), FaultStats::default());
    }

    #[test]
    fn spec_parses_and_refuses_nonsense() {
        let s = FaultSpec::parse("drop=0.05, delay=0.5\ndelay_ms=20,seed=9").unwrap();
        assert_eq!(
            s,
            FaultSpec {
                drop_ppm: 50_000,
                delay_ppm: 500_000,
                delay_ms: 20,
                seed: 9
            }
        );
        assert_eq!(FaultSpec::parse("").unwrap().drop_ppm, 0);
        assert!(FaultSpec::parse("drop=2").is_err());
        assert!(FaultSpec::parse("drop=x").is_err());
        assert!(FaultSpec::parse("loss=0.1").is_err());
        assert!(FaultSpec::parse("delay_ms=999999").is_err());
        assert!(FaultSpec::parse("drop").is_err());
    }

    #[test]
    fn drop_everything_drops_everything() {
        let mut h = FaultHook::from_setting("drop=1", Instant::now()).unwrap();
        for n in 0..50 {
            assert_eq!(h.on_receive(d(n)), None);
        }
        assert_eq!(h.stats().dropped, 50);
        assert_eq!(h.take_due(), None);
    }

    #[test]
    fn drop_rate_is_roughly_what_was_asked() {
        let mut h = FaultHook::from_setting("drop=0.25,seed=3", Instant::now()).unwrap();
        let passed = (0..10_000u32)
            .filter(|&n| h.on_receive(d(n as u8)).is_some())
            .count();
        assert!((7_000..8_000).contains(&passed), "{passed} of 10000 passed");
    }

    #[test]
    fn delayed_datagrams_come_back_once_due_and_the_queue_is_bounded() {
        let mut h = FaultHook::from_setting("delay=1,delay_ms=30", Instant::now()).unwrap();
        for n in 0..u8::try_from(MAX_HELD.min(200)).unwrap() {
            assert_eq!(h.on_receive(d(n)), None, "held");
        }
        assert!(h.release_in().unwrap() <= Duration::from_millis(30));
        std::thread::sleep(Duration::from_millis(40));
        let mut back = Vec::new();
        while let Some(x) = h.take_due() {
            back.push(x[0]);
        }
        back.sort_unstable();
        assert_eq!(back, (0..200).collect::<Vec<u8>>(), "each comes back once");
        assert_eq!(h.release_in(), None);

        let mut full = FaultHook::from_setting("delay=1,delay_ms=5000", Instant::now()).unwrap();
        for _ in 0..MAX_HELD {
            assert_eq!(full.on_receive(d(1)), None);
        }
        assert_eq!(full.on_receive(d(2)), Some(d(2)), "a full queue passes");
        assert_eq!(full.stats().held_full, 1);
        assert_eq!(full.stats().delayed, MAX_HELD as u64);
    }

    #[test]
    fn control_file_turns_faults_on_and_off() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("faults");
        let t0 = Instant::now();
        let mut h = FaultHook::from_setting(&format!("file={}", path.display()), t0).unwrap();
        assert!(h.is_active());
        assert_eq!(h.on_receive(d(1)), Some(d(1)), "no file: no faults");
        std::fs::write(&path, "drop=1\n").unwrap();
        std::thread::sleep(CONTROL_CHECK_INTERVAL + Duration::from_millis(20));
        assert_eq!(h.on_receive(d(2)), None, "the file asks for drops");
        std::fs::write(&path, "").unwrap();
        std::thread::sleep(CONTROL_CHECK_INTERVAL + Duration::from_millis(20));
        assert_eq!(h.on_receive(d(3)), Some(d(3)), "emptied: no faults");
        std::fs::write(&path, "drop=nonsense").unwrap();
        std::thread::sleep(CONTROL_CHECK_INTERVAL + Duration::from_millis(20));
        assert_eq!(h.on_receive(d(4)), Some(d(4)), "malformed: no faults");
    }
}
