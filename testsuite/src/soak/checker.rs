//! Checks the EVS properties on the soak's session logs ([`super::log`]).
//!
//! # Words
//! A *session* is one EVS library connection of one soak client, from
//! connect to its end. Its log cuts it into *segments*: the deliveries
//! between one configuration change and the next (or the end). A segment
//! is *live* when its configuration change arrived after the session's
//! group join returned: the session then belongs to the group for the
//! whole configuration and sees every delivery of it. (A session's first
//! configuration change is usually the engine's replay of the last one at
//! connect, before the join: that segment starts mid-configuration and is
//! not live.) A live segment is *complete* when another configuration
//! change ends it, or the session's clean end (after the final drain); a
//! segment cut short by a broken connection (its node was killed, stopped
//! long enough for a call to time out, or terminated) is not.
//!
//! # Properties (what a node killed -9 cannot promise is left out)
//! - **Integrity**: every delivered payload is intact, no session gets a
//!   message twice, and every delivered message was multicast by its
//!   sender (whose last attempt at that number was accepted, or failed
//!   with the outcome unknown; never one refused with TRY_AGAIN, which
//!   queues nothing).
//! - **FIFO**: each session gets any one sender session's messages in
//!   increasing number.
//! - **Total order**: there is one order of all delivered messages that
//!   every session's delivery order follows (checked as: the graph of
//!   "delivered right after, by some session" edges has no cycle; a cycle
//!   is reported with two sessions that disagree where one is found).
//!   Any two sessions therefore deliver their common messages in the same
//!   relative order.
//! - **No loss within a configuration**: in a configuration C, a live
//!   segment that delivered message m delivered every message delivered
//!   in C by anyone that precedes m in the total order. So members of C
//!   deliver one prefix of C's messages each, with no holes (a member
//!   killed in C delivers a shorter prefix).
//! - **Virtual synchrony** (extended: transitional configurations count):
//!   complete segments of C whose sessions moved to the same next
//!   configuration (or all ended clean at the end) delivered the same set
//!   of messages in C.
//! - **Self-delivery**: a session that ended clean (its node kept running
//!   and its connection held until the end) delivered every message it
//!   multicast whose last attempt was accepted; a session that broke
//!   delivered every accepted message of its own numbered below the
//!   highest of its own it got back (its node sends its messages in order
//!   and loses none while it lives). (That it is delivered in
//!   the configuration it was sent in, or its transitional one, is not
//!   checked: a client cannot see when Totem first sent it.)
//! - **Configurations**: every session that reports a configuration
//!   reports the same members; a session's node is a member of every
//!   configuration it reports; configurations come in increasing ring
//!   order, none twice; a message delivered in a regular configuration was
//!   sent by a member of it, one delivered in a transitional configuration
//!   by a member of the regular configuration before it.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use super::log::{ConfId, Event, MsgId, SessionId, SessionLog};

/// Which property a violation breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Property {
    /// Corrupt, duplicated or invented messages.
    Integrity,
    /// One sender's messages out of order.
    Fifo,
    /// No single order fits every session.
    TotalOrder,
    /// A hole in a member's deliveries within a configuration.
    NoLoss,
    /// Members moving together delivered different sets.
    VirtualSynchrony,
    /// A surviving sender did not get its own message.
    SelfDelivery,
    /// Configuration reports disagree or are impossible.
    Configuration,
    /// Checkpoint replicas differ at the end.
    Checkpoint,
    /// The nodes did not end in one ring.
    Ring,
}

/// One violation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// What it breaks.
    pub property: Property,
    /// What was seen.
    pub text: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}: {}", self.property, self.text)
    }
}

/// What the check covered.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckStats {
    /// Sessions read.
    pub sessions: u64,
    /// Sessions that ended clean.
    pub sessions_clean: u64,
    /// Multicasts accepted (last attempt).
    pub accepted: u64,
    /// Multicasts refused with TRY_AGAIN (attempts).
    pub refused: u64,
    /// Distinct messages delivered somewhere.
    pub messages: u64,
    /// Deliveries (messages times sessions).
    pub deliveries: u64,
    /// Distinct regular configurations seen.
    pub regular_configurations: u64,
    /// Distinct transitional configurations seen.
    pub transitional_configurations: u64,
    /// Groups of complete segments compared for virtual synchrony.
    pub synchrony_groups: u64,
    /// Live segments checked for holes.
    pub segments_checked: u64,
    /// Own messages checked for self-delivery.
    pub self_deliveries: u64,
}

/// The outcome of a check.
#[derive(Clone, Debug, Default)]
pub struct CheckReport {
    /// Every violation found.
    pub violations: Vec<Violation>,
    /// Coverage.
    pub stats: CheckStats,
}

/// A configuration's identity. A regular configuration is its ring; a
/// transitional one is the new ring *and* its members: nodes that come
/// from different old rings into one new ring each get their own
/// transitional configuration (the old ring's members that go on), all
/// with the new ring's id.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct ConfKey {
    id: ConfId,
    /// The members for a transitional configuration; empty for a regular
    /// one (whose members are checked to agree instead).
    members: Vec<u32>,
}

impl ConfKey {
    fn new(id: ConfId, members: &[u32]) -> ConfKey {
        ConfKey {
            id,
            members: if id.transitional {
                members.to_vec()
            } else {
                Vec::new()
            },
        }
    }
}

impl std::fmt::Display for ConfKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.id.transitional {
            write!(f, "{} of {:?}", self.id, self.members)
        } else {
            write!(f, "{}", self.id)
        }
    }
}

/// How a segment ended.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Next {
    Conf(ConfKey),
    EndClean,
    EndBroken,
}

#[derive(Debug)]
struct Segment {
    session: SessionId,
    conf: Option<ConfKey>,
    live: bool,
    deliveries: Vec<MsgId>,
    next: Next,
}

/// A multicast attempt's last outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Attempted,
    Accepted,
    Refused,
    Failed,
}

/// Checks `logs`.
pub fn check(logs: &[SessionLog]) -> CheckReport {
    let mut report = CheckReport::default();
    let v = &mut report.violations;
    let stats = &mut report.stats;
    stats.sessions = logs.len() as u64;

    // What each session tried to send, by number: the last outcome.
    let mut sent: HashMap<SessionId, HashMap<u32, Outcome>> = HashMap::new();
    for log in logs {
        let mine = sent.entry(log.id).or_default();
        for e in &log.events {
            let (seq, o) = match e {
                Event::Attempt(s) => (*s, Outcome::Attempted),
                Event::Accepted(s) => (*s, Outcome::Accepted),
                Event::Refused(s) => {
                    stats.refused += 1;
                    (*s, Outcome::Refused)
                }
                Event::Failed(s) => (*s, Outcome::Failed),
                _ => continue,
            };
            mine.insert(seq, o);
        }
        stats.accepted += mine.values().filter(|&&o| o == Outcome::Accepted).count() as u64;
    }

    let mut segments = Vec::new();
    let mut conf_members: BTreeMap<ConfKey, (Vec<u32>, SessionId)> = BTreeMap::new();
    for log in logs {
        check_session(log, &sent, &mut segments, &mut conf_members, v, stats);
    }
    stats.regular_configurations =
        conf_members.keys().filter(|c| !c.id.transitional).count() as u64;
    stats.transitional_configurations =
        conf_members.keys().filter(|c| c.id.transitional).count() as u64;

    let order = total_order(logs, v, stats);
    if let Some(order) = &order {
        no_loss(&segments, order, v, stats);
    }
    virtual_synchrony(&segments, v, stats);
    report
}

/// The per-session checks: integrity, FIFO, configurations, self-delivery;
/// and the session cut into segments.
fn check_session(
    log: &SessionLog,
    sent: &HashMap<SessionId, HashMap<u32, Outcome>>,
    segments: &mut Vec<Segment>,
    conf_members: &mut BTreeMap<ConfKey, (Vec<u32>, SessionId)>,
    v: &mut Vec<Violation>,
    stats: &mut CheckStats,
) {
    let id = log.id;
    let mut seen: HashSet<MsgId> = HashSet::new();
    let mut fifo: HashMap<SessionId, u32> = HashMap::new();
    let mut joined = false;
    let mut current = Segment {
        session: id,
        conf: None,
        live: false,
        deliveries: Vec::new(),
        next: Next::EndBroken,
    };
    let mut members: Vec<u32> = Vec::new();
    let mut last_regular: Option<Vec<u32>> = None;
    let mut confs_seen: HashSet<ConfId> = HashSet::new();
    let mut last_conf: Option<ConfId> = None;
    let mut clean = false;
    for e in &log.events {
        match e {
            Event::Conf { id: c, members: m } => {
                if let Some(prev) = last_conf {
                    if c.seq < prev.seq {
                        v.push(viol(
                            Property::Configuration,
                            format!("{id} got {c} after {prev}: ring order went back"),
                        ));
                    }
                }
                if !confs_seen.insert(*c) {
                    v.push(viol(Property::Configuration, format!("{id} got {c} twice")));
                }
                if !m.contains(&u32::from(id.node)) {
                    v.push(viol(
                        Property::Configuration,
                        format!("{id} got {c} with members {m:?} without its own node"),
                    ));
                }
                let key = ConfKey::new(*c, m);
                match conf_members.get(&key) {
                    Some((other, who)) if other != m => v.push(viol(
                        Property::Configuration,
                        format!("{c}: {id} says members {m:?}, {who} says {other:?}"),
                    )),
                    Some(_) => {}
                    None => {
                        conf_members.insert(key.clone(), (m.clone(), id));
                    }
                }
                if !c.transitional {
                    last_regular = Some(m.clone());
                } else if current.conf.as_ref().is_none_or(|p| p.id.transitional) {
                    // Its regular configuration was not seen here.
                    last_regular = None;
                }
                let mut done = std::mem::replace(
                    &mut current,
                    Segment {
                        session: id,
                        conf: Some(key.clone()),
                        live: joined,
                        deliveries: Vec::new(),
                        next: Next::EndBroken,
                    },
                );
                done.next = Next::Conf(key);
                segments.push(done);
                members.clone_from(m);
                last_conf = Some(*c);
            }
            Event::Joined => joined = true,
            Event::Deliver(m) => {
                stats.deliveries += 1;
                if !seen.insert(*m) {
                    v.push(viol(Property::Integrity, format!("{id} got {m} twice")));
                    continue;
                }
                match sent.get(&m.sender()).and_then(|s| s.get(&m.seq)) {
                    None => v.push(viol(
                        Property::Integrity,
                        format!("{id} got {m}, which its sender never multicast"),
                    )),
                    Some(Outcome::Refused) => v.push(viol(
                        Property::Integrity,
                        format!("{id} got {m}, whose multicast was refused (TRY_AGAIN)"),
                    )),
                    Some(_) => {}
                }
                let last = fifo.entry(m.sender()).or_insert(0);
                if m.seq <= *last {
                    v.push(viol(
                        Property::Fifo,
                        format!("{id} got {m} after #{last} of the same sender"),
                    ));
                }
                *last = (*last).max(m.seq);
                if let Some(c) = &current.conf {
                    let allowed = if c.id.transitional {
                        last_regular.as_ref()
                    } else {
                        Some(&members)
                    };
                    if let Some(allowed) = allowed {
                        if !allowed.contains(&u32::from(m.node)) {
                            v.push(viol(
                                Property::Configuration,
                                format!(
                                    "{id} got {m} in {c}, but node {} is not in {allowed:?}",
                                    m.node
                                ),
                            ));
                        }
                    }
                }
                current.deliveries.push(*m);
            }
            Event::Corrupt(t) => v.push(viol(
                Property::Integrity,
                format!("{id} got a corrupt payload: {t}"),
            )),
            Event::End { clean: c, .. } => {
                clean = *c;
                current.next = if *c { Next::EndClean } else { Next::EndBroken };
            }
            Event::Attempt(_) | Event::Accepted(_) | Event::Refused(_) | Event::Failed(_) => {}
        }
    }
    segments.push(current);
    if clean {
        stats.sessions_clean += 1;
    }
    // A clean session is owed all its accepted messages; a broken one
    // those before the last of its own it got back (its node sends them
    // in order and loses none while it lives).
    let mine = |s: u32| MsgId {
        node: id.node,
        client: id.client,
        session: id.session,
        seq: s,
    };
    let own_high = seen
        .iter()
        .filter(|m| m.sender() == id)
        .map(|m| m.seq)
        .max()
        .unwrap_or(0);
    let mut missing: Vec<u32> = sent
        .get(&id)
        .into_iter()
        .flatten()
        .filter(|&(&s, &o)| o == Outcome::Accepted && (clean || s < own_high))
        .map(|(&s, _)| s)
        .collect();
    stats.self_deliveries += missing.len() as u64;
    missing.retain(|&s| !seen.contains(&mine(s)));
    missing.sort_unstable();
    if let Some(first) = missing.first() {
        let how = if clean {
            "ended clean".to_owned()
        } else {
            format!("got its own #{own_high} back")
        };
        v.push(viol(
            Property::SelfDelivery,
            format!(
                "{id} {how} without getting {} of its own accepted messages before it (first #{first})",
                missing.len()
            ),
        ));
    }
}

/// One order of every delivered message that each session's order
/// follows, as a rank per message; `None` (and a violation) if there is
/// none.
fn total_order(
    logs: &[SessionLog],
    v: &mut Vec<Violation>,
    stats: &mut CheckStats,
) -> Option<HashMap<MsgId, usize>> {
    let mut index: HashMap<MsgId, usize> = HashMap::new();
    let mut ids: Vec<MsgId> = Vec::new();
    let mut succ: Vec<Vec<usize>> = Vec::new();
    let mut indegree: Vec<usize> = Vec::new();
    for log in logs {
        let mut prev: Option<usize> = None;
        let mut seen = HashSet::new();
        for e in &log.events {
            let Event::Deliver(m) = e else { continue };
            if !seen.insert(*m) {
                continue; // a duplicate, reported already
            }
            let i = *index.entry(*m).or_insert_with(|| {
                ids.push(*m);
                succ.push(Vec::new());
                indegree.push(0);
                ids.len() - 1
            });
            if let Some(p) = prev {
                succ[p].push(i);
                indegree[i] += 1;
            }
            prev = Some(i);
        }
    }
    stats.messages = ids.len() as u64;
    let mut ready: VecDeque<usize> = (0..ids.len()).filter(|&i| indegree[i] == 0).collect();
    let mut rank = vec![usize::MAX; ids.len()];
    let mut next = 0;
    while let Some(i) = ready.pop_front() {
        rank[i] = next;
        next += 1;
        for &j in &succ[i] {
            indegree[j] -= 1;
            if indegree[j] == 0 {
                ready.push_back(j);
            }
        }
    }
    if next == ids.len() {
        return Some(ids.into_iter().zip(rank).collect());
    }
    let cyclic: HashSet<MsgId> = ids
        .iter()
        .zip(&rank)
        .filter(|(_, &r)| r == usize::MAX)
        .map(|(m, _)| *m)
        .collect();
    let text = match disagreement(logs, &cyclic) {
        Some((a, b, x, y)) => format!(
            "{a} delivered {x} before {y}, {b} delivered {y} before {x} ({} messages in order cycles)",
            cyclic.len()
        ),
        None => format!(
            "the sessions' orders form a cycle over {} messages, e.g. {:?}",
            cyclic.len(),
            cyclic.iter().take(4).collect::<Vec<_>>()
        ),
    };
    v.push(viol(Property::TotalOrder, text));
    None
}

/// Two sessions and two messages they deliver in opposite orders, among
/// the messages of `cyclic`.
fn disagreement(
    logs: &[SessionLog],
    cyclic: &HashSet<MsgId>,
) -> Option<(SessionId, SessionId, MsgId, MsgId)> {
    let orders: Vec<(SessionId, Vec<MsgId>)> = logs
        .iter()
        .map(|l| {
            let o: Vec<MsgId> = l
                .events
                .iter()
                .filter_map(|e| match e {
                    Event::Deliver(m) if cyclic.contains(m) => Some(*m),
                    _ => None,
                })
                .collect();
            (l.id, o)
        })
        .filter(|(_, o)| o.len() > 1)
        .collect();
    for (i, (a, oa)) in orders.iter().enumerate() {
        for (b, ob) in &orders[i + 1..] {
            let pos: HashMap<MsgId, usize> = ob.iter().enumerate().map(|(k, m)| (*m, k)).collect();
            let mut last: Option<(MsgId, usize)> = None;
            for m in oa {
                let Some(&p) = pos.get(m) else { continue };
                if let Some((x, lp)) = last {
                    if p < lp {
                        return Some((*a, *b, x, *m));
                    }
                }
                last = Some((*m, p));
            }
        }
    }
    None
}

/// No holes within a configuration (see the module docs).
fn no_loss(
    segments: &[Segment],
    order: &HashMap<MsgId, usize>,
    v: &mut Vec<Violation>,
    stats: &mut CheckStats,
) {
    let mut by_conf: BTreeMap<&ConfKey, Vec<&Segment>> = BTreeMap::new();
    for s in segments {
        if let Some(c) = &s.conf {
            by_conf.entry(c).or_default().push(s);
        }
    }
    for (c, segs) in by_conf {
        let mut all: Vec<usize> = segs
            .iter()
            .flat_map(|s| s.deliveries.iter().map(|m| order[m]))
            .collect();
        all.sort_unstable();
        all.dedup();
        for s in segs.iter().filter(|s| s.live && !s.deliveries.is_empty()) {
            stats.segments_checked += 1;
            let last = s.deliveries.iter().map(|m| order[m]).max().unwrap_or(0);
            let expected = all.partition_point(|&r| r <= last);
            if s.deliveries.len() != expected {
                let mine: HashSet<usize> = s.deliveries.iter().map(|m| order[m]).collect();
                let hole = all[..expected].iter().find(|r| !mine.contains(r));
                let hole = hole
                    .and_then(|r| order.iter().find(|(_, &x)| x == *r).map(|(m, _)| *m))
                    .map_or_else(|| "?".to_owned(), |m| m.to_string());
                v.push(viol(
                    Property::NoLoss,
                    format!(
                        "{} in {c}: delivered {} messages up to its last, others delivered {expected} up to there; missing e.g. {hole}",
                        s.session,
                        s.deliveries.len()
                    ),
                ));
            }
        }
    }
}

/// Same sets for complete segments that move on together.
fn virtual_synchrony(segments: &[Segment], v: &mut Vec<Violation>, stats: &mut CheckStats) {
    let mut groups: BTreeMap<(&ConfKey, &Next), Vec<&Segment>> = BTreeMap::new();
    for s in segments {
        let Some(c) = &s.conf else { continue };
        if s.live && s.next != Next::EndBroken {
            groups.entry((c, &s.next)).or_default().push(s);
        }
    }
    for ((c, next), segs) in groups {
        if segs.len() < 2 {
            continue;
        }
        stats.synchrony_groups += 1;
        let sets: Vec<(SessionId, Vec<MsgId>)> = segs
            .iter()
            .map(|s| {
                let mut d = s.deliveries.clone();
                d.sort_unstable();
                (s.session, d)
            })
            .collect();
        let (first, base) = &sets[0];
        for (other, set) in &sets[1..] {
            if set != base {
                let a: HashSet<&MsgId> = base.iter().collect();
                let b: HashSet<&MsgId> = set.iter().collect();
                let only_a = a.difference(&b).next();
                let only_b = b.difference(&a).next();
                let to = match next {
                    Next::Conf(n) => n.to_string(),
                    _ => "the end".to_owned(),
                };
                v.push(viol(
                    Property::VirtualSynchrony,
                    format!(
                        "in {c} before {to}: {first} delivered {} messages, {other} {} (only {first}: {only_a:?}, only {other}: {only_b:?})",
                        base.len(),
                        set.len()
                    ),
                ));
            }
        }
    }
}

fn viol(property: Property, text: String) -> Violation {
    Violation { property, text }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: SessionId = SessionId {
        node: 1,
        client: 1,
        session: 1,
    };
    const B: SessionId = SessionId {
        node: 2,
        client: 1,
        session: 1,
    };

    fn conf(seq: u64, transitional: bool) -> ConfId {
        ConfId {
            seq,
            rep: 1,
            transitional,
        }
    }

    fn m(s: SessionId, seq: u32) -> MsgId {
        MsgId {
            node: s.node,
            client: s.client,
            session: s.session,
            seq,
        }
    }

    /// Two nodes in ring 4, each sending `n` messages, delivered in one
    /// interleaved order by both, then a clean end.
    fn good_logs(n: u32) -> Vec<SessionLog> {
        let order: Vec<MsgId> = (1..=n).flat_map(|i| [m(A, i), m(B, i)]).collect();
        [A, B]
            .iter()
            .map(|&id| {
                let mut events = vec![
                    // Each alone in a ring of its own first.
                    Event::Conf {
                        id: ConfId {
                            seq: 2,
                            rep: u32::from(id.node),
                            transitional: false,
                        },
                        members: vec![u32::from(id.node)],
                    },
                    Event::Joined,
                    Event::Conf {
                        id: conf(4, true),
                        members: vec![u32::from(id.node)],
                    },
                    Event::Conf {
                        id: conf(4, false),
                        members: vec![1, 2],
                    },
                ];
                for i in 1..=n {
                    events.push(Event::Attempt(i));
                    events.push(Event::Accepted(i));
                }
                events.extend(order.iter().map(|&x| Event::Deliver(x)));
                events.push(Event::End {
                    clean: true,
                    why: "over".into(),
                });
                SessionLog { id, events }
            })
            .collect()
    }

    fn properties(logs: &[SessionLog]) -> Vec<Property> {
        let mut p: Vec<Property> = check(logs).violations.iter().map(|v| v.property).collect();
        p.sort_unstable();
        p.dedup();
        p
    }

    fn deliveries_mut(log: &mut SessionLog) -> Vec<&mut Event> {
        log.events
            .iter_mut()
            .filter(|e| matches!(e, Event::Deliver(_)))
            .collect()
    }

    #[test]
    fn consistent_logs_pass_and_are_counted() {
        let logs = good_logs(20);
        let r = check(&logs);
        assert_eq!(r.violations, vec![]);
        assert_eq!(r.stats.messages, 40);
        assert_eq!(r.stats.deliveries, 80);
        assert_eq!(r.stats.accepted, 40);
        assert_eq!(r.stats.self_deliveries, 40);
        assert_eq!(r.stats.synchrony_groups, 1);
        assert_eq!(r.stats.segments_checked, 2);
        assert_eq!(r.stats.regular_configurations, 3);
        assert_eq!(r.stats.transitional_configurations, 2);
    }

    #[test]
    fn a_reordering_is_caught_with_both_witnesses() {
        let mut logs = good_logs(20);
        let mut d = deliveries_mut(&mut logs[1]);
        let (x, y) = (d[5].clone(), d[6].clone());
        *d[5] = y;
        *d[6] = x;
        let r = check(&logs);
        let total: Vec<&Violation> = r
            .violations
            .iter()
            .filter(|v| v.property == Property::TotalOrder)
            .collect();
        assert_eq!(total.len(), 1, "{:?}", r.violations);
        assert!(total[0].text.contains("n1c1s1") && total[0].text.contains("n2c1s1"));
    }

    #[test]
    fn a_loss_within_a_configuration_is_caught() {
        let mut logs = good_logs(20);
        // Node 2 misses one of node 1's messages in the middle of ring 4.
        let victim = m(A, 7);
        logs[1].events.retain(|e| *e != Event::Deliver(victim));
        let p = properties(&logs);
        assert!(p.contains(&Property::NoLoss), "{p:?}");
        assert!(p.contains(&Property::VirtualSynchrony), "{p:?}");
        assert!(!p.contains(&Property::TotalOrder), "{p:?}");
    }

    #[test]
    fn a_lost_tail_breaks_synchrony_and_self_delivery_but_not_no_loss() {
        let mut logs = good_logs(20);
        // Node 2's session misses the last message (its own): a prefix is
        // not a hole, but it moved on (ended clean) with another set.
        let last = m(B, 20);
        logs[1].events.retain(|e| *e != Event::Deliver(last));
        assert_eq!(
            properties(&logs),
            vec![Property::VirtualSynchrony, Property::SelfDelivery]
        );
        // Had its session broken, nothing is promised.
        if let Some(Event::End { clean, .. }) = logs[1].events.last_mut() {
            *clean = false;
        }
        assert_eq!(properties(&logs), vec![]);
        // But a broken session that got its own #20 back is owed #5 (the
        // others did not get it either, so the loss is the sender's).
        let mut logs = good_logs(20);
        let early = m(B, 5);
        for l in &mut logs {
            l.events.retain(|e| *e != Event::Deliver(early));
        }
        if let Some(Event::End { clean, .. }) = logs[1].events.last_mut() {
            *clean = false;
        }
        assert!(properties(&logs).contains(&Property::SelfDelivery));
    }

    #[test]
    fn duplicates_inventions_refusals_and_corruption_are_integrity() {
        let mut logs = good_logs(3);
        let mut dup = logs.clone();
        let d = Event::Deliver(m(A, 1));
        dup[0].events.insert(6, d);
        assert!(properties(&dup).contains(&Property::Integrity));

        let mut invented = logs.clone();
        for l in &mut invented {
            l.events.insert(8, Event::Deliver(m(A, 99)));
        }
        assert!(properties(&invented).contains(&Property::Integrity));

        let mut refused = logs.clone();
        for e in &mut refused[0].events {
            if *e == Event::Accepted(2) {
                *e = Event::Refused(2);
            }
        }
        assert!(properties(&refused).contains(&Property::Integrity));

        logs[0].events.insert(5, Event::Corrupt("bad magic".into()));
        assert_eq!(properties(&logs), vec![Property::Integrity]);
    }

    #[test]
    fn configuration_disagreements_are_caught() {
        let mut logs = good_logs(3);
        if let Event::Conf { members, .. } = &mut logs[1].events[3] {
            *members = vec![1, 2, 3];
        }
        assert!(properties(&logs).contains(&Property::Configuration));

        let mut logs = good_logs(3);
        // Node 2 delivers a message from node 9, not a member.
        let intruder = SessionId {
            node: 9,
            client: 1,
            session: 1,
        };
        logs[1].events.insert(8, Event::Deliver(m(intruder, 1)));
        logs.push(SessionLog {
            id: intruder,
            events: vec![
                Event::Attempt(1),
                Event::Accepted(1),
                Event::End {
                    clean: false,
                    why: "killed".into(),
                },
            ],
        });
        assert!(properties(&logs).contains(&Property::Configuration));
    }

    #[test]
    fn a_session_joined_mid_configuration_is_not_held_to_it() {
        let mut logs = good_logs(10);
        // A third session connects mid-ring (its first V is the replay,
        // before J) and sees only the last few messages: no violation.
        let late = SessionId {
            node: 2,
            client: 2,
            session: 1,
        };
        let mut events = vec![
            Event::Conf {
                id: conf(4, false),
                members: vec![1, 2],
            },
            Event::Joined,
        ];
        let tail: Vec<Event> = logs[0]
            .events
            .iter()
            .filter(|e| matches!(e, Event::Deliver(_)))
            .skip(15)
            .cloned()
            .collect();
        events.extend(tail);
        events.push(Event::End {
            clean: true,
            why: "over".into(),
        });
        logs.push(SessionLog { id: late, events });
        assert_eq!(check(&logs).violations, vec![]);
    }
}
