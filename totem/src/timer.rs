//! Timers as data (quinn-proto's `TimerTable`).
//!
//! Every timer the protocol uses is a variant of [`Timer`]; a table holds at
//! most one deadline per variant. The driver only ever sees the earliest
//! deadline (`Totem::poll_timeout`); `Totem::handle_timeout` takes every
//! expired timer out of the table and acts on it, so a spurious or early
//! call does nothing.

use crate::time::Instant;

/// The protocol's timers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Timer {
    /// No token (or, in Commit, no progress of the commit token) for `token`.
    TokenLoss,
    /// The token (or commit token) we forwarded shows no sign of having
    /// arrived: send it again.
    TokenRetransmit,
    /// The representative holds the token on an idle ring; on expiry it
    /// processes and forwards it.
    TokenHold,
    /// Gather: resend our join message.
    Join,
    /// Gather: consensus was not reached in time; fail the silent nodes.
    Consensus,
    /// Announce ourselves (merge detection and reachability).
    Hello,
}

const TIMER_COUNT: usize = 6;

impl Timer {
    const ALL: [Timer; TIMER_COUNT] = [
        Timer::TokenLoss,
        Timer::TokenRetransmit,
        Timer::TokenHold,
        Timer::Join,
        Timer::Consensus,
        Timer::Hello,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

/// One optional deadline per timer.
#[derive(Clone, Debug, Default)]
pub struct TimerTable {
    deadlines: [Option<Instant>; TIMER_COUNT],
}

impl TimerTable {
    /// Arms (or re-arms) `timer` to expire at `at`.
    pub fn set(&mut self, timer: Timer, at: Instant) {
        self.deadlines[timer.index()] = Some(at);
    }

    /// Disarms `timer`.
    pub fn stop(&mut self, timer: Timer) {
        self.deadlines[timer.index()] = None;
    }

    /// Whether `timer` is armed.
    pub fn is_set(&self, timer: Timer) -> bool {
        self.deadlines[timer.index()].is_some()
    }

    /// The earliest deadline of any armed timer.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.iter().flatten().copied().min()
    }

    /// Disarms and returns the earliest timer expired at `now`, if any.
    /// Ties go to the timer declared first, so processing is deterministic.
    pub fn pop_expired(&mut self, now: Instant) -> Option<Timer> {
        let mut best: Option<(Instant, Timer)> = None;
        for t in Timer::ALL {
            if let Some(at) = self.deadlines[t.index()] {
                if at <= now && best.is_none_or(|(b, _)| at < b) {
                    best = Some((at, t));
                }
            }
        }
        let (_, t) = best?;
        self.stop(t);
        Some(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_expired_in_deadline_order_and_ignores_future() {
        let mut t = TimerTable::default();
        t.set(Timer::Hello, Instant::from_nanos(30));
        t.set(Timer::Join, Instant::from_nanos(10));
        t.set(Timer::TokenLoss, Instant::from_nanos(50));
        assert_eq!(t.next_deadline(), Some(Instant::from_nanos(10)));
        assert_eq!(t.pop_expired(Instant::from_nanos(5)), None);
        assert_eq!(t.pop_expired(Instant::from_nanos(40)), Some(Timer::Join));
        assert_eq!(t.pop_expired(Instant::from_nanos(40)), Some(Timer::Hello));
        assert_eq!(t.pop_expired(Instant::from_nanos(40)), None);
        assert!(t.is_set(Timer::TokenLoss));
        t.stop(Timer::TokenLoss);
        assert_eq!(t.next_deadline(), None);
    }
}
