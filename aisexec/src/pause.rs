//! Detects that the daemon itself was not running: the event loop asked to
//! be woken after some time and got the CPU back much later (the host was
//! overloaded, the process was stopped, memory was paged out), or one turn
//! of the loop took that long. Either way the token may have been late
//! because of *us*, not the network; corosync users know this warning as
//! "process pause detected". The warning says how long and what the
//! threshold is.
//!
//! The clock is `std::time::Instant` (monotonic); a suspended host does not
//! count.

use std::time::{Duration, Instant};

/// What was detected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pause {
    /// `poll` returned this much later than asked.
    NotScheduled(Duration),
    /// One turn of the loop (handling what `poll` returned) took this long.
    Busy(Duration),
}

/// Watches the event loop around each `poll`.
#[derive(Debug)]
pub struct PauseDetector {
    threshold: Duration,
    /// When `poll` was entered and how long it was allowed to wait.
    polling: Option<(Instant, Option<Duration>)>,
    /// When the last `poll` returned.
    woke: Option<Instant>,
}

impl PauseDetector {
    /// Reports pauses longer than `threshold`.
    pub fn new(threshold: Duration) -> PauseDetector {
        PauseDetector {
            threshold,
            polling: None,
            woke: None,
        }
    }

    /// The threshold.
    pub fn threshold(&self) -> Duration {
        self.threshold
    }

    /// The loop is about to call `poll` with `timeout` at `now`. Returns a
    /// pause if the turn that ends here took too long.
    pub fn before_poll(&mut self, now: Instant, timeout: Option<Duration>) -> Option<Pause> {
        self.polling = Some((now, timeout));
        let busy = now.saturating_duration_since(self.woke.take()?);
        (busy > self.threshold).then_some(Pause::Busy(busy))
    }

    /// `poll` returned at `now`. Returns a pause if it returned later than
    /// its timeout by more than the threshold.
    pub fn after_poll(&mut self, now: Instant) -> Option<Pause> {
        self.woke = Some(now);
        let (entered, timeout) = self.polling.take()?;
        // Without a timeout, a long wait is just an idle loop.
        let late = now
            .saturating_duration_since(entered)
            .checked_sub(timeout?)?;
        (late > self.threshold).then_some(Pause::NotScheduled(late))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn late_wakeups_and_long_turns_are_reported() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut d = PauseDetector::new(ms(100));
        assert_eq!(d.before_poll(t0, Some(ms(50))), None);
        assert_eq!(
            d.after_poll(t0 + ms(120)),
            None,
            "70 ms late is within the threshold"
        );
        assert_eq!(d.before_poll(t0 + ms(130), Some(ms(50))), None);
        assert_eq!(
            d.after_poll(t0 + ms(430)),
            Some(Pause::NotScheduled(ms(250)))
        );
        assert_eq!(
            d.before_poll(t0 + ms(631), None),
            Some(Pause::Busy(ms(201)))
        );
        assert_eq!(d.after_poll(t0 + ms(5000)), None, "no timeout: idle");
    }
}
