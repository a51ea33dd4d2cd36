//! Aggregated reporting of repeated events: instead of a line per
//! retransmission or dropped datagram (corosync's "Retransmit List"
//! floods), the daemon samples its counters every [`REPORT_INTERVAL`] and
//! logs one line with what grew since the last line, if anything did.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use totem::Instant;

/// How often counters are compared, at most one line each time.
pub const REPORT_INTERVAL: Duration = Duration::from_secs(5);

/// The counters seen at the last report.
#[derive(Debug)]
pub struct CounterReport {
    last: BTreeMap<&'static str, u64>,
    next: Instant,
}

impl CounterReport {
    /// The first report is due one interval after `now`.
    pub fn new(now: Instant) -> CounterReport {
        CounterReport {
            last: BTreeMap::new(),
            next: now + REPORT_INTERVAL,
        }
    }

    /// When [`CounterReport::sample`] should be called next.
    pub fn deadline(&self) -> Instant {
        self.next
    }

    /// Compares `current` with the last sample if the interval has passed:
    /// returns `"name +delta, ..."` for the counters that grew, or `None`.
    pub fn sample(&mut self, now: Instant, current: &[(&'static str, u64)]) -> Option<String> {
        if now < self.next {
            return None;
        }
        self.next = now + REPORT_INTERVAL;
        let mut line = String::new();
        for &(name, value) in current {
            let before = self.last.insert(name, value).unwrap_or(0);
            if value > before {
                if !line.is_empty() {
                    line.push_str(", ");
                }
                let _ = write!(line, "{name} +{}", value - before);
            }
        }
        (!line.is_empty()).then_some(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_with_deltas_per_interval() {
        let t0 = Instant::ZERO;
        let mut r = CounterReport::new(t0);
        assert_eq!(r.sample(t0, &[("a", 5)]), None, "not due yet");
        let t1 = t0 + REPORT_INTERVAL;
        assert_eq!(r.sample(t1, &[("a", 5), ("b", 0)]).as_deref(), Some("a +5"));
        let t2 = t1 + REPORT_INTERVAL;
        assert_eq!(r.sample(t2, &[("a", 5), ("b", 0)]), None, "nothing grew");
        let t3 = t2 + REPORT_INTERVAL;
        assert_eq!(
            r.sample(t3, &[("a", 7), ("b", 1)]).as_deref(),
            Some("a +2, b +1")
        );
        assert_eq!(r.deadline(), t3 + REPORT_INTERVAL);
    }
}
