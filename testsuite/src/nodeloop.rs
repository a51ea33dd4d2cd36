//! The event loop the simulators with services share (`nodesim`,
//! `ckptsim`): scheduled tasks, the nodes' timers and the network's
//! datagrams, taken strictly in time order.
//!
//! At one instant tasks go first, then the timer of the lowest node index,
//! then datagrams in send order, so a seed replays exactly. The loop only
//! chooses the next input; the simulator hands it to its node and drains
//! the node as the `node` crate documents.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use totem::Instant;

use crate::network::{Datagram, Network};

/// Steps in one run before it is declared a runaway.
pub const MAX_STEPS: u64 = 20_000_000;

/// The next input of a run.
#[derive(Debug)]
pub enum Input<T> {
    /// A scheduled task.
    Task(T),
    /// The timer of the node at this index is due.
    Timer(usize),
    /// A datagram arrived.
    Packet(Datagram),
}

/// Tasks, the clock and the end of a run.
#[derive(Debug)]
pub struct Loop<T> {
    tasks: BinaryHeap<Reverse<(Instant, u64, T)>>,
    seq: u64,
    steps: u64,
    /// The simulated time of the input last returned.
    pub now: Instant,
    end: Instant,
}

impl<T: Ord> Loop<T> {
    /// A loop that runs until `end`.
    pub fn new(end: Instant) -> Loop<T> {
        Loop {
            tasks: BinaryHeap::new(),
            seq: 0,
            steps: 0,
            now: Instant::ZERO,
            end,
        }
    }

    /// Schedules `task` at `at` (tasks at one instant run in the order
    /// they were scheduled).
    pub fn push(&mut self, at: Instant, task: T) {
        self.seq += 1;
        self.tasks.push(Reverse((at, self.seq, task)));
    }

    /// The earliest input at or before the end, with `now` advanced to its
    /// time; `Ok(None)` once nothing is left before the end.
    ///
    /// `timers` gives each node's next deadline by index (`None` for a
    /// node that is down or has no timer).
    ///
    /// # Errors
    /// A runaway: more than [`MAX_STEPS`] inputs in one run.
    pub fn next(
        &mut self,
        timers: impl Iterator<Item = Option<Instant>>,
        net: &mut Network,
    ) -> Result<Option<Input<T>>, String> {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            return Err(format!("runaway: more than {MAX_STEPS} steps"));
        }
        let next_task = self.tasks.peek().map(|r| r.0 .0);
        let next_timer = timers
            .enumerate()
            .filter_map(|(i, t)| t.map(|t| (t, i)))
            .min();
        let next_net = net.next_arrival();
        let candidates = [next_task, next_timer.map(|t| t.0), next_net];
        let Some(t) = candidates.into_iter().flatten().min() else {
            return Ok(None);
        };
        if t > self.end {
            return Ok(None);
        }
        self.now = self.now.max(t);
        if next_task == Some(t) {
            let Reverse((_, _, task)) = self.tasks.pop().expect("peeked");
            return Ok(Some(Input::Task(task)));
        }
        if let Some((at, i)) = next_timer {
            if at == t {
                return Ok(Some(Input::Timer(i)));
            }
        }
        Ok(net.pop().map(Input::Packet))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use std::time::Duration;

    #[test]
    fn tasks_then_timers_then_packets_and_nothing_after_the_end() {
        let mut net = Network::new(2, ChaCha8Rng::seed_from_u64(1));
        let t1 = Instant::ZERO + Duration::from_millis(1);
        let mut lp: Loop<u8> = Loop::new(Instant::ZERO + Duration::from_millis(5));
        lp.push(t1, 7);
        lp.push(t1, 8);
        lp.push(Instant::ZERO + Duration::from_millis(9), 9);
        let timers = [None, Some(t1)];
        let mut seen = Vec::new();
        while let Some(i) = lp.next(timers.iter().copied(), &mut net).unwrap() {
            match i {
                Input::Task(t) => seen.push(format!("task {t}")),
                Input::Timer(n) => {
                    seen.push(format!("timer {n}"));
                    break; // the driver would re-arm it; stop here
                }
                Input::Packet(_) => seen.push("packet".into()),
            }
        }
        assert_eq!(seen, ["task 7", "task 8", "timer 1"]);
        assert_eq!(lp.now, t1);
        // Only the task after the end is left: the loop ends.
        assert!(lp
            .next([None, None].into_iter(), &mut net)
            .unwrap()
            .is_none());
    }
}
