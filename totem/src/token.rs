//! The ordering token (ORF) and what its holder computes from it (Totem
//! paper, section 3: "the total ordering protocol"; corosync's flow control).
//!
//! Deviation from the paper: instead of one `aru` with the `aru_addr` of the
//! node that lowered it (whose safe-delivery rule needs an argument over two
//! rotations), the token carries every member's own aru as of its last
//! visit (`member_aru`, at most `MAX_MEMBERS` entries). Each entry only
//! grows and never exceeds what that member really has, so the minimum is a
//! lower bound on what every member holds: messages up to it are safe to
//! deliver with the Safe guarantee and to free. It also names the member
//! that is behind, which `fail_recv_const` needs.
//!
//! Flow control (corosync's): `fcc` counts the messages sent during the
//! last rotation and `backlog` sums what members have queued; a visit may
//! send at most `max_messages`, at most what the window has left this
//! rotation, at most a fair share of the window when others have backlog,
//! and never so far ahead of the slowest member that the receive logs would
//! overflow.

use crate::ids::Seq;
use crate::wire::Token;

/// How many new messages the holder may send on this visit.
///
/// `my_last_sent`: what we sent on our previous visit (already counted in
/// `fcc`); `my_backlog`: frames we have queued now; `max_outstanding`: how
/// far token.seq may run ahead of the lowest member aru.
pub(crate) fn allowed_to_send(
    token: &Token,
    window_size: u32,
    max_messages: u32,
    my_last_sent: u32,
    my_backlog: u32,
    max_outstanding: u64,
) -> u32 {
    let others_fcc = token.fcc.saturating_sub(my_last_sent);
    let mut allowed = window_size.saturating_sub(others_fcc).min(max_messages);
    if token.backlog > my_backlog && my_backlog > 0 {
        // Others wait too: take a share of the window in proportion to ours.
        let share =
            (u64::from(window_size) * u64::from(my_backlog) / u64::from(token.backlog)).max(1);
        allowed = allowed.min(u32::try_from(share).unwrap_or(u32::MAX));
    }
    let outstanding = token.seq.0.saturating_sub(min_aru(token).0);
    let room = max_outstanding.saturating_sub(outstanding);
    allowed
        .min(u32::try_from(room).unwrap_or(u32::MAX))
        .min(my_backlog)
}

/// The first token of a new ring of `members` members.
pub(crate) fn first(members: usize) -> Token {
    Token {
        token_seq: 0,
        seq: Seq::ZERO,
        fcc: 0,
        backlog: 0,
        retransmitted: false,
        install_seq: None,
        recovery_done: 0,
        member_aru: vec![Seq::ZERO; members],
        rtr: Vec::new(),
    }
}

/// The lowest member aru: every member has every message up to it.
pub(crate) fn min_aru(token: &Token) -> Seq {
    token.member_aru.iter().copied().min().unwrap_or(Seq::ZERO)
}

/// Updates the token's flow-control fields for this visit.
pub(crate) fn account(
    token: &mut Token,
    my_last_sent: u32,
    sent_now: u32,
    my_last_backlog: u32,
    my_backlog: u32,
) {
    token.fcc = token
        .fcc
        .saturating_sub(my_last_sent)
        .saturating_add(sent_now);
    token.backlog = token
        .backlog
        .saturating_sub(my_last_backlog)
        .saturating_add(my_backlog);
}

/// Counts, per member, consecutive visits on which its aru was behind the
/// token's seq and did not move: `fail_recv_const` of those and the member
/// is taken for one that no longer receives.
#[derive(Clone, Debug, Default)]
pub(crate) struct ReceiveStall {
    last_aru: Vec<Seq>,
    stalled: Vec<u32>,
}

impl ReceiveStall {
    /// Looks at a token (before our own entry is updated) and returns the
    /// index of a member stalled for `limit` visits, if any.
    pub(crate) fn observe(&mut self, token: &Token, my_index: usize, limit: u32) -> Option<usize> {
        let n = token.member_aru.len();
        if self.last_aru.len() != n {
            self.last_aru = token.member_aru.clone();
            self.stalled = vec![0; n];
            return None;
        }
        let mut found = None;
        for i in 0..n {
            let aru = token.member_aru[i];
            if i != my_index && aru < token.seq && aru == self.last_aru[i] {
                self.stalled[i] += 1;
                if self.stalled[i] >= limit && found.is_none() {
                    found = Some(i);
                }
            } else {
                self.stalled[i] = 0;
            }
            self.last_aru[i] = aru;
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(seq: u64, arus: &[u64], fcc: u32, backlog: u32) -> Token {
        Token {
            token_seq: 1,
            seq: Seq(seq),
            fcc,
            backlog,
            retransmitted: false,
            install_seq: None,
            recovery_done: 0,
            member_aru: arus.iter().map(|&a| Seq(a)).collect(),
            rtr: vec![],
        }
    }

    #[test]
    fn flow_control_respects_every_limit() {
        // Idle ring, plenty queued: max_messages.
        assert_eq!(
            allowed_to_send(&token(0, &[0, 0], 0, 0), 50, 17, 0, 100, 400),
            17
        );
        // Window nearly used by others this rotation.
        assert_eq!(
            allowed_to_send(&token(0, &[0, 0], 45, 0), 50, 17, 0, 100, 400),
            5
        );
        // Our own last visit does not count against us.
        assert_eq!(
            allowed_to_send(&token(0, &[0, 0], 45, 0), 50, 17, 10, 100, 400),
            15
        );
        // Fair share when others have backlog: 50 * 10 / 100.
        assert_eq!(
            allowed_to_send(&token(0, &[0, 0], 0, 100), 50, 17, 0, 10, 400),
            5
        );
        // The slowest member is 395 behind: 5 more.
        assert_eq!(
            allowed_to_send(&token(400, &[5, 400], 0, 0), 50, 17, 0, 100, 400),
            5
        );
        // Nothing queued, nothing sent.
        assert_eq!(
            allowed_to_send(&token(0, &[0, 0], 0, 0), 50, 17, 0, 0, 400),
            0
        );
    }

    #[test]
    fn stall_is_detected_after_limit_visits() {
        let mut s = ReceiveStall::default();
        let t = token(10, &[10, 3, 10], 0, 0);
        assert_eq!(s.observe(&t, 0, 3), None);
        assert_eq!(s.observe(&t, 0, 3), None);
        assert_eq!(s.observe(&t, 0, 3), None);
        assert_eq!(s.observe(&t, 0, 3), Some(1));
        let moved = token(10, &[10, 4, 10], 0, 0);
        assert_eq!(s.observe(&moved, 0, 3), None);
    }
}
