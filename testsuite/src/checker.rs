//! Checks what the nodes did against what Totem promises: total order,
//! integrity, self-delivery, extended virtual synchrony, membership
//! agreement, and (when a run asks for them) liveness and stability.
//!
//! The simulator records one [`History`] per node: every start and crash,
//! every message the node queued, every configuration change and every
//! delivery, in the order the node saw them. [`check`] reads the histories
//! after the run and returns the first [`Violation`] found, safety first:
//!
//! 1. **total order** ([`Property::TotalOrder`]): the messages two nodes both
//!    delivered with the same ring id (ordered in the same ring, whether
//!    delivered in its regular or in the following transitional
//!    configuration) appear in the same relative order on both;
//! 2. **integrity** ([`Property::Integrity`]): every delivered payload is
//!    intact and was queued by its origin (nothing invented, nothing
//!    corrupted, the origin the protocol reports is the one in the payload)
//!    no earlier than it was delivered, and no node delivers one id twice in
//!    one incarnation (so not twice in one configuration either);
//! 3. **self-delivery** ([`Property::SelfDelivery`]): a node that queued a
//!    message, never crashed after, and ends the run in a regular
//!    configuration installed after the send (and at least a margin before
//!    the end) delivered the message;
//! 4. **virtual synchrony** ([`Property::VirtualSynchrony`]): every delivery
//!    carries the ring id of the regular configuration the node last
//!    installed; two nodes that install the same regular configuration C1 and
//!    then both install the same next one C2 delivered the same set of
//!    messages in between (transitional deliveries count for C1) and saw the
//!    same transitional configuration;
//! 5. **membership** ([`Property::Membership`]): regular configurations with
//!    the same ring id have the same members everywhere; members are sorted,
//!    in the cluster, and include the node itself; the ring's representative
//!    is its lowest member; the ring ids a node installs grow, also across
//!    restarts; a transitional configuration is a subset of the previous and
//!    the next regular one and is followed by the regular configuration of
//!    the same ring; `left` and `joined` match the previous configuration;
//! 6. **liveness** ([`Property::Liveness`]): within a bound after the calm
//!    phase starts, every live node is Operational in one ring of all live
//!    nodes; one probe message queued by each node at that moment is
//!    delivered by every node; the run ends in that state;
//! 7. **stability** ([`Property::Stability`]): no configuration change after
//!    a settling time, every live node ends Operational, and the largest
//!    ring has at least a given number of members.
//!
//! The simulator itself adds [`Property::Protocol`] (the protocol broke its
//! API contract: refused a legal message, let its persisted ring seq fall
//! behind a ring it installed) and [`Property::Simulation`] (a panic, time
//! that stops advancing, a packet storm).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::time::Duration;

use totem::{ConfigKind, Instant, NodeId, RingId, RingState};

use crate::workload::MsgId;

/// Which promise was broken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Property {
    /// 1: two nodes delivered messages of one ring in different orders.
    TotalOrder,
    /// 2: a duplicate, invented, corrupted or misattributed delivery.
    Integrity,
    /// 3: a live node did not deliver its own message.
    SelfDelivery,
    /// 4: deliveries outside their configuration, or different sets of
    /// messages between the same two configurations.
    VirtualSynchrony,
    /// 5: disagreement on a ring's members, or malformed configurations.
    Membership,
    /// 6: no single ring of all live nodes in time, or messages not
    /// delivered on it.
    Liveness,
    /// 7: configuration changes after the settling time.
    Stability,
    /// The protocol broke its API contract.
    Protocol,
    /// The run itself went wrong: a panic, time stopped, a packet storm.
    Simulation,
}

impl fmt::Display for Property {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Property::TotalOrder => "total order",
            Property::Integrity => "integrity",
            Property::SelfDelivery => "self-delivery",
            Property::VirtualSynchrony => "virtual synchrony",
            Property::Membership => "membership",
            Property::Liveness => "liveness",
            Property::Stability => "stability",
            Property::Protocol => "protocol contract",
            Property::Simulation => "simulation",
        })
    }
}

/// A broken promise, with what is needed to find it in a trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Which one.
    pub property: Property,
    /// When it shows (simulated time), if one moment is to blame.
    pub at: Option<Instant>,
    /// Which node, if one is to blame.
    pub node: Option<NodeId>,
    /// What exactly happened.
    pub detail: String,
}

impl Violation {
    /// A violation of `property`.
    pub fn new(
        property: Property,
        at: Option<Instant>,
        node: Option<NodeId>,
        detail: impl Into<String>,
    ) -> Violation {
        Violation {
            property,
            at,
            node,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.property)?;
        if let Some(at) = self.at {
            write!(f, " at {at}")?;
        }
        if let Some(n) = self.node {
            write!(f, " on n{n}")?;
        }
        write!(f, ": {}", self.detail)
    }
}

/// One thing a node did or saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    /// The node started (a fresh protocol instance; `incarnation` counts
    /// previous starts).
    Start {
        /// 0 for the first start.
        incarnation: u32,
    },
    /// The node crashed: its state is gone.
    Crash,
    /// `handle_mcast` accepted message `id`.
    Send {
        /// The message.
        id: MsgId,
        /// The node's ring at that moment.
        ring_id: RingId,
        /// The node's state at that moment.
        state: RingState,
    },
    /// A configuration change.
    Config {
        /// Transitional or regular.
        kind: ConfigKind,
        /// The ring (for a transitional one: the new ring).
        ring_id: RingId,
        /// Members, as reported.
        members: Vec<NodeId>,
        /// As reported.
        left: Vec<NodeId>,
        /// As reported.
        joined: Vec<NodeId>,
    },
    /// A delivery.
    Deliver {
        /// The ring it was ordered in, as reported.
        ring_id: RingId,
        /// The origin, as reported.
        origin: NodeId,
        /// The id read from the payload, or why the payload is not one of
        /// ours.
        msg: Result<MsgId, String>,
    },
}

/// One entry and when it happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Simulated time.
    pub at: Instant,
    /// What.
    pub entry: Entry,
}

/// Everything one node did, across its incarnations, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct History {
    /// The node.
    pub node: NodeId,
    /// In the order they happened.
    pub records: Vec<Record>,
}

impl History {
    /// An empty history for `node`.
    pub fn new(node: NodeId) -> History {
        History {
            node,
            records: Vec::new(),
        }
    }

    /// Appends an entry.
    pub fn push(&mut self, at: Instant, entry: Entry) {
        self.records.push(Record { at, entry });
    }

    /// The history cut at its starts: one slice per incarnation, and whether
    /// that incarnation ended in a crash.
    fn incarnations(&self) -> Vec<Incarnation<'_>> {
        let mut out = Vec::new();
        let mut begin: Option<(usize, u32)> = None;
        for (i, r) in self.records.iter().enumerate() {
            match r.entry {
                Entry::Start { incarnation } => {
                    if let Some((b, n)) = begin {
                        out.push(Incarnation {
                            number: n,
                            records: &self.records[b..i],
                            crashed: false,
                        });
                    }
                    begin = Some((i + 1, incarnation));
                }
                Entry::Crash => {
                    if let Some((b, n)) = begin.take() {
                        out.push(Incarnation {
                            number: n,
                            records: &self.records[b..i],
                            crashed: true,
                        });
                    }
                }
                _ => {}
            }
        }
        if let Some((b, n)) = begin {
            out.push(Incarnation {
                number: n,
                records: &self.records[b..],
                crashed: false,
            });
        }
        out
    }
}

/// The records of one incarnation (without its Start and Crash).
#[derive(Clone, Copy, Debug)]
struct Incarnation<'a> {
    number: u32,
    records: &'a [Record],
    crashed: bool,
}

/// How a node ended the run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FinalNode {
    /// The node.
    pub node: NodeId,
    /// Running (not crashed).
    pub up: bool,
    /// Paused at the end.
    pub paused: bool,
    /// Its protocol state, if up.
    pub state: Option<RingState>,
    /// Its ring, if up.
    pub ring_id: Option<RingId>,
    /// Its ring's members, if up.
    pub members: Vec<NodeId>,
}

impl fmt::Display for FinalNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.node)?;
        match (self.up, self.state, self.ring_id) {
            (true, Some(s), Some(r)) => {
                write!(
                    f,
                    " {s:?}{} {r:?} {}",
                    if self.paused { " (paused)" } else { "" },
                    Members(&self.members)
                )
            }
            _ => write!(f, " down"),
        }
    }
}

/// What a run promises about liveness, and what the simulator observed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LivenessFacts {
    /// When the calm phase started (the bound counts from here).
    pub from: Instant,
    /// How long the ring may take to converge.
    pub bound: Duration,
    /// When every live node was first seen Operational in one ring of all
    /// live nodes, whose regular configuration it had delivered; a ring
    /// left before every probe sent for it was delivered everywhere does
    /// not count (it was broken already, see the simulator).
    pub converged_at: Option<Instant>,
    /// The probes queued at that moment, one per live node.
    pub probes: Vec<MsgId>,
    /// Nodes whose probe the protocol never accepted.
    pub probes_refused: Vec<NodeId>,
}

/// What a stability run promises.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StabilityFacts {
    /// No configuration change may happen after this.
    pub settle: Instant,
    /// The largest ring at the end has at least this many members.
    pub min_ring: usize,
}

/// Everything about a run besides the histories.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunFacts {
    /// Cluster size (node ids 1..=nodes).
    pub nodes: usize,
    /// When the run ended.
    pub end: Instant,
    /// Self-delivery is only required of rings installed at least this long
    /// before the end.
    pub self_delivery_margin: Duration,
    /// Liveness, if this run promises it.
    pub liveness: Option<LivenessFacts>,
    /// Stability, if this run promises it.
    pub stability: Option<StabilityFacts>,
    /// Each node's state at the end, by node id.
    pub final_nodes: Vec<FinalNode>,
}

/// Formats a member list as `[1,2,3]`.
#[derive(Clone, Copy, Debug)]
pub struct Members<'a>(pub &'a [NodeId]);

impl fmt::Display for Members<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, n) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{n}")?;
        }
        f.write_str("]")
    }
}

/// Checks every property; the first violation found, safety before
/// liveness.
///
/// # Errors
/// The first [`Violation`].
pub fn check(histories: &[History], facts: &RunFacts) -> Result<(), Violation> {
    check_safety(histories, facts)?;
    check_progress(histories, facts)
}

/// Properties 1 to 5, in the order integrity, membership, total order,
/// virtual synchrony, self-delivery (so that later checks may rely on ids
/// being sound and configurations well formed).
///
/// # Errors
/// The first [`Violation`].
pub fn check_safety(histories: &[History], facts: &RunFacts) -> Result<(), Violation> {
    check_integrity(histories)?;
    check_membership(histories, facts.nodes)?;
    check_total_order(histories)?;
    check_virtual_synchrony(histories)?;
    check_self_delivery(histories, facts)
}

/// Properties 6 and 7, where the run promises them.
///
/// # Errors
/// The first [`Violation`].
pub fn check_progress(histories: &[History], facts: &RunFacts) -> Result<(), Violation> {
    if let Some(l) = &facts.liveness {
        check_liveness(histories, facts, l)?;
    }
    if let Some(s) = &facts.stability {
        check_stability(histories, facts, s)?;
    }
    Ok(())
}

/// Property 2: intact, sent, attributed right, delivered at most once per
/// incarnation.
pub fn check_integrity(histories: &[History]) -> Result<(), Violation> {
    let mut sent: HashMap<MsgId, Instant> = HashMap::new();
    for h in histories {
        for inc in h.incarnations() {
            for r in inc.records {
                if let Entry::Send { id, .. } = r.entry {
                    sent.insert(id, r.at);
                }
            }
        }
    }
    for h in histories {
        for inc in h.incarnations() {
            let mut seen: HashMap<MsgId, (Instant, RingId)> = HashMap::new();
            for r in inc.records {
                let Entry::Deliver {
                    ring_id,
                    origin,
                    msg,
                } = &r.entry
                else {
                    continue;
                };
                let v = |detail: String| {
                    Violation::new(Property::Integrity, Some(r.at), Some(h.node), detail)
                };
                let id = match msg {
                    Ok(id) => *id,
                    Err(e) => {
                        return Err(v(format!(
                            "delivered a payload that is not any message sent: {e}"
                        )))
                    }
                };
                if id.origin != *origin {
                    return Err(v(format!("delivered {id} as coming from n{origin}")));
                }
                match sent.get(&id) {
                    None => {
                        return Err(v(format!(
                            "delivered {id}, which n{} never queued (invented)",
                            id.origin
                        )))
                    }
                    Some(&t) if t > r.at => {
                        return Err(v(format!(
                            "delivered {id} before n{} queued it at {t}",
                            id.origin
                        )));
                    }
                    Some(_) => {}
                }
                if let Some((t, first_ring)) = seen.insert(id, (r.at, *ring_id)) {
                    return Err(v(format!(
                        "delivered {id} twice in incarnation {}: in {first_ring:?} at {t}, again in {ring_id:?}",
                        inc.number
                    )));
                }
            }
        }
    }
    Ok(())
}

/// Property 5: configurations are well formed and agreed on.
pub fn check_membership(histories: &[History], nodes: usize) -> Result<(), Violation> {
    let mut agreed: BTreeMap<RingId, (NodeId, &[NodeId])> = BTreeMap::new();
    for h in histories {
        let mut last_ring: Option<RingId> = None;
        for inc in h.incarnations() {
            let mut prev: Option<&[NodeId]> = None;
            let mut last_regular: Option<&[NodeId]> = None;
            let mut pending_trans: Option<(RingId, &[NodeId])> = None;
            for r in inc.records {
                let Entry::Config {
                    kind,
                    ring_id,
                    members,
                    left,
                    joined,
                } = &r.entry
                else {
                    continue;
                };
                let v = |detail: String| {
                    Violation::new(Property::Membership, Some(r.at), Some(h.node), detail)
                };
                let what = format!("{kind:?} {ring_id:?} {}", Members(members));
                if !members.windows(2).all(|w| w[0] < w[1]) {
                    return Err(v(format!("{what}: members not strictly ascending")));
                }
                if let Some(bad) = members.iter().find(|m| m.get() as usize > nodes) {
                    return Err(v(format!(
                        "{what}: n{bad} is not in the cluster of {nodes}"
                    )));
                }
                if !members.contains(&h.node) {
                    return Err(v(format!(
                        "{what}: the node is not in its own configuration"
                    )));
                }
                if let Some((tr, _)) = pending_trans {
                    if *kind == ConfigKind::Transitional || tr != *ring_id {
                        return Err(v(format!(
                            "transitional configuration of {tr:?} not followed by its regular configuration but by {what}"
                        )));
                    }
                }
                if let Some(p) = prev {
                    let want_left = minus(p, members);
                    let want_joined = minus(members, p);
                    if *left != want_left || *joined != want_joined {
                        return Err(v(format!(
                            "{what} after {}: left {} joined {}, expected left {} joined {}",
                            Members(p),
                            Members(left),
                            Members(joined),
                            Members(&want_left),
                            Members(&want_joined)
                        )));
                    }
                }
                match kind {
                    ConfigKind::Transitional => {
                        if let Some(lr) = last_regular {
                            if !is_subset(members, lr) {
                                return Err(v(format!(
                                    "{what}: transitional members are not a subset of the previous regular {}",
                                    Members(lr)
                                )));
                            }
                        }
                        pending_trans = Some((*ring_id, members));
                    }
                    ConfigKind::Regular => {
                        if ring_id.rep != members[0] {
                            return Err(v(format!(
                                "{what}: the representative is not the lowest member"
                            )));
                        }
                        if let Some((_, tm)) = pending_trans.take() {
                            if !is_subset(tm, members) {
                                return Err(v(format!(
                                    "{what}: the transitional members {} are not all in it",
                                    Members(tm)
                                )));
                            }
                        }
                        if let Some(lr) = last_ring {
                            if *ring_id <= lr {
                                return Err(v(format!(
                                    "{what} installed after {lr:?}: ring ids must grow"
                                )));
                            }
                        }
                        last_ring = Some(*ring_id);
                        match agreed.get(ring_id) {
                            Some(&(other, m)) if m != members.as_slice() => {
                                return Err(v(format!(
                                    "{what}, but n{other} installed it as {}",
                                    Members(m)
                                )));
                            }
                            Some(_) => {}
                            None => {
                                agreed.insert(*ring_id, (h.node, members));
                            }
                        }
                        last_regular = Some(members);
                    }
                }
                prev = Some(members);
            }
        }
    }
    Ok(())
}

/// What one node delivered of one ring, in order, with when.
type Deliveries = Vec<(MsgId, Instant)>;

/// Property 1: same relative order of common messages per ring.
pub fn check_total_order(histories: &[History]) -> Result<(), Violation> {
    // ring -> what each node (incarnation) delivered of it, in order
    let mut per_ring: BTreeMap<RingId, Vec<(NodeId, Deliveries)>> = BTreeMap::new();
    for h in histories {
        for inc in h.incarnations() {
            let mut mine: BTreeMap<RingId, Deliveries> = BTreeMap::new();
            for r in inc.records {
                if let Entry::Deliver {
                    ring_id,
                    msg: Ok(id),
                    ..
                } = &r.entry
                {
                    mine.entry(*ring_id).or_default().push((*id, r.at));
                }
            }
            for (ring, seq) in mine {
                per_ring.entry(ring).or_default().push((h.node, seq));
            }
        }
    }
    for (ring, seqs) in &per_ring {
        for (i, (na, a)) in seqs.iter().enumerate() {
            let pos: HashMap<MsgId, usize> =
                a.iter().enumerate().map(|(p, (id, _))| (*id, p)).collect();
            for (nb, b) in &seqs[i + 1..] {
                let mut last: Option<(usize, MsgId)> = None;
                for (id, at) in b {
                    let Some(&p) = pos.get(id) else { continue };
                    if let Some((lp, lid)) = last {
                        if p < lp {
                            return Err(Violation::new(
                                Property::TotalOrder,
                                Some(*at),
                                Some(*nb),
                                format!(
                                    "in {ring:?} n{na} delivered {id} before {lid}, but n{nb} delivered {lid} before {id}"
                                ),
                            ));
                        }
                    }
                    last = Some((p, *id));
                }
            }
        }
    }
    Ok(())
}

/// What one node delivered between two regular configurations.
struct Segment {
    node: NodeId,
    delivered: Vec<MsgId>,
    transitional: Option<Vec<NodeId>>,
    at: Instant,
}

/// Property 4: deliveries within their configuration; same sets between
/// the same two configurations.
pub fn check_virtual_synchrony(histories: &[History]) -> Result<(), Violation> {
    let mut segments: BTreeMap<(RingId, RingId), Segment> = BTreeMap::new();
    for h in histories {
        for inc in h.incarnations() {
            let mut current: Option<RingId> = None;
            let mut delivered: Vec<MsgId> = Vec::new();
            let mut transitional: Option<Vec<NodeId>> = None;
            for r in inc.records {
                let v = |detail: String| {
                    Violation::new(Property::VirtualSynchrony, Some(r.at), Some(h.node), detail)
                };
                match &r.entry {
                    Entry::Deliver { ring_id, msg, .. } => {
                        let id = msg
                            .as_ref()
                            .map(|m| m.to_string())
                            .unwrap_or_else(|_| "a message".into());
                        match current {
                            None => {
                                return Err(v(format!(
                                "delivered {id} of {ring_id:?} before any regular configuration"
                            )))
                            }
                            Some(c) if c != *ring_id => {
                                return Err(v(format!(
                                    "delivered {id} of {ring_id:?} while its configuration is {c:?}"
                                )));
                            }
                            Some(_) => {}
                        }
                        if let Ok(m) = msg {
                            delivered.push(*m);
                        }
                    }
                    Entry::Config {
                        kind: ConfigKind::Transitional,
                        members,
                        ..
                    } => {
                        transitional = Some(members.clone());
                    }
                    Entry::Config {
                        kind: ConfigKind::Regular,
                        ring_id,
                        ..
                    } => {
                        if let Some(c1) = current {
                            delivered.sort_unstable();
                            let seg = Segment {
                                node: h.node,
                                delivered: std::mem::take(&mut delivered),
                                transitional: transitional.take(),
                                at: r.at,
                            };
                            if let Some(first) = segments.get(&(c1, *ring_id)) {
                                compare_segments(c1, *ring_id, first, &seg)?;
                            } else {
                                segments.insert((c1, *ring_id), seg);
                            }
                        }
                        delivered.clear();
                        transitional = None;
                        current = Some(*ring_id);
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(())
}

fn compare_segments(c1: RingId, c2: RingId, a: &Segment, b: &Segment) -> Result<(), Violation> {
    let v = |detail: String| {
        Violation::new(Property::VirtualSynchrony, Some(b.at), Some(b.node), detail)
    };
    if a.delivered != b.delivered {
        let only =
            |x: &[MsgId], y: &[MsgId]| x.iter().find(|m| y.binary_search(m).is_err()).copied();
        let (who, whonot, m) = match only(&a.delivered, &b.delivered) {
            Some(m) => (a.node, b.node, m),
            None => (
                b.node,
                a.node,
                only(&b.delivered, &a.delivered).expect("the sorted sets differ"),
            ),
        };
        return Err(v(format!(
            "n{} and n{} both went from {c1:?} to {c2:?}, but n{who} delivered {m} in between and n{whonot} did not \
             ({} vs {} messages)",
            a.node,
            b.node,
            a.delivered.len(),
            b.delivered.len()
        )));
    }
    if a.transitional != b.transitional {
        let show = |t: &Option<Vec<NodeId>>| {
            t.as_deref()
                .map_or("none".to_string(), |m| Members(m).to_string())
        };
        return Err(v(format!(
            "n{} and n{} both went from {c1:?} to {c2:?} through different transitional configurations: {} vs {}",
            a.node,
            b.node,
            show(&a.transitional),
            show(&b.transitional)
        )));
    }
    Ok(())
}

/// Property 3: a live node delivers what it queued, once a ring installed
/// after the send has had time to carry it.
pub fn check_self_delivery(histories: &[History], facts: &RunFacts) -> Result<(), Violation> {
    for h in histories {
        let Some(inc) = h.incarnations().pop() else {
            continue;
        };
        if inc.crashed {
            continue;
        }
        let last_config = inc
            .records
            .iter()
            .rposition(|r| matches!(r.entry, Entry::Config { .. }));
        let Some(l) = last_config else { continue };
        let installed = &inc.records[l];
        let Entry::Config {
            kind: ConfigKind::Regular,
            ring_id: final_ring,
            ..
        } = installed.entry
        else {
            continue;
        };
        if installed.at + facts.self_delivery_margin > facts.end {
            continue;
        }
        let delivered: HashSet<MsgId> = inc
            .records
            .iter()
            .filter_map(|r| match &r.entry {
                Entry::Deliver { msg: Ok(id), .. } => Some(*id),
                _ => None,
            })
            .collect();
        for r in &inc.records[..l] {
            if let Entry::Send { id, ring_id, state } = r.entry {
                if !delivered.contains(&id) {
                    return Err(Violation::new(
                        Property::SelfDelivery,
                        Some(r.at),
                        Some(h.node),
                        format!(
                            "queued {id} in {ring_id:?} ({state:?}), then installed {final_ring:?} at {} and \
                             stayed there, but never delivered it",
                            installed.at
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Live nodes at the end, and whether they are all Operational in one ring
/// made of exactly them; if not, why not.
fn one_ring_of_live_nodes(facts: &RunFacts) -> Result<(), String> {
    let live: Vec<&FinalNode> = facts.final_nodes.iter().filter(|f| f.up).collect();
    let ids: Vec<NodeId> = live.iter().map(|f| f.node).collect();
    let all = || {
        facts
            .final_nodes
            .iter()
            .map(|f| f.to_string())
            .collect::<Vec<_>>()
            .join("; ")
    };
    let Some(first) = live.first() else {
        return Err("no node is up".into());
    };
    for f in &live {
        if f.paused
            || f.state != Some(RingState::Operational)
            || f.ring_id != first.ring_id
            || f.members != ids
        {
            return Err(format!(
                "live nodes {} are not one Operational ring: {}",
                Members(&ids),
                all()
            ));
        }
    }
    Ok(())
}

/// Property 6.
pub fn check_liveness(
    histories: &[History],
    facts: &RunFacts,
    l: &LivenessFacts,
) -> Result<(), Violation> {
    let deadline = l.from + l.bound;
    let finals = || {
        facts
            .final_nodes
            .iter()
            .map(|f| f.to_string())
            .collect::<Vec<_>>()
            .join("; ")
    };
    match l.converged_at {
        Some(t) if t <= deadline => {}
        Some(t) => {
            return Err(Violation::new(
                Property::Liveness,
                Some(t),
                None,
                format!(
                    "the live nodes formed one ring only at {t}, {:?} after {}",
                    t - l.from,
                    l.from
                ),
            ));
        }
        None => {
            return Err(Violation::new(
                Property::Liveness,
                Some(deadline),
                None,
                format!(
                    "no single ring of all live nodes within {:?} after the calm phase began at {}; at the end: {}",
                    l.bound,
                    l.from,
                    finals()
                ),
            ));
        }
    }
    if let Some(n) = l.probes_refused.first() {
        return Err(Violation::new(
            Property::Liveness,
            l.converged_at,
            Some(*n),
            "the protocol never accepted the probe message (QueueFull until the end)",
        ));
    }
    for h in histories {
        if !facts.final_nodes.iter().any(|f| f.node == h.node && f.up) {
            continue;
        }
        let Some(inc) = h.incarnations().pop() else {
            continue;
        };
        let delivered: HashSet<MsgId> = inc
            .records
            .iter()
            .filter_map(|r| match &r.entry {
                Entry::Deliver { msg: Ok(id), .. } => Some(*id),
                _ => None,
            })
            .collect();
        if let Some(p) = l.probes.iter().find(|p| !delivered.contains(p)) {
            return Err(Violation::new(
                Property::Liveness,
                Some(facts.end),
                Some(h.node),
                format!(
                    "the probe {p} sent at {} once the ring had formed was never delivered here; at the end: {}",
                    l.converged_at.unwrap_or_default(),
                    finals()
                ),
            ));
        }
    }
    one_ring_of_live_nodes(facts).map_err(|e| {
        Violation::new(
            Property::Liveness,
            Some(facts.end),
            None,
            format!("the ring did not last to the end: {e}"),
        )
    })
}

/// Property 7.
pub fn check_stability(
    histories: &[History],
    facts: &RunFacts,
    s: &StabilityFacts,
) -> Result<(), Violation> {
    for h in histories {
        let late: Vec<&Record> = h
            .records
            .iter()
            .filter(|r| r.at > s.settle && matches!(r.entry, Entry::Config { .. }))
            .collect();
        if let Some(first) = late.first() {
            let Entry::Config {
                kind,
                ring_id,
                members,
                ..
            } = &first.entry
            else {
                unreachable!("filtered")
            };
            return Err(Violation::new(
                Property::Stability,
                Some(first.at),
                Some(h.node),
                format!(
                    "{} configuration changes after the settling time {}; the first: {kind:?} {ring_id:?} {}",
                    late.len(),
                    s.settle,
                    Members(members)
                ),
            ));
        }
    }
    let finals = || {
        facts
            .final_nodes
            .iter()
            .map(|f| f.to_string())
            .collect::<Vec<_>>()
            .join("; ")
    };
    if let Some(f) = facts
        .final_nodes
        .iter()
        .find(|f| f.up && (f.paused || f.state != Some(RingState::Operational)))
    {
        return Err(Violation::new(
            Property::Stability,
            Some(facts.end),
            Some(f.node),
            format!("not Operational at the end: {}", finals()),
        ));
    }
    let largest = facts
        .final_nodes
        .iter()
        .filter(|f| f.up)
        .map(|f| f.members.len())
        .max()
        .unwrap_or(0);
    if largest < s.min_ring {
        return Err(Violation::new(
            Property::Stability,
            Some(facts.end),
            None,
            format!(
                "the largest ring at the end has {largest} members, fewer than {}: {}",
                s.min_ring,
                finals()
            ),
        ));
    }
    Ok(())
}

/// `a` without the members of `b` (both ascending).
fn minus(a: &[NodeId], b: &[NodeId]) -> Vec<NodeId> {
    a.iter().copied().filter(|n| !b.contains(n)).collect()
}

fn is_subset(a: &[NodeId], b: &[NodeId]) -> bool {
    a.iter().all(|n| b.contains(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(i: u32) -> NodeId {
        NodeId::new(i).expect("nonzero")
    }

    fn t(ms: u64) -> Instant {
        Instant::from_nanos(ms * 1_000_000)
    }

    fn ring(rep: u32, seq: u64) -> RingId {
        RingId { seq, rep: n(rep) }
    }

    fn m(origin: u32, counter: u64) -> MsgId {
        MsgId {
            origin: n(origin),
            incarnation: 0,
            counter,
        }
    }

    fn ids(v: &[u32]) -> Vec<NodeId> {
        v.iter().map(|&i| n(i)).collect()
    }

    /// Builds a history the way the simulator records one; `left` and
    /// `joined` are derived from the previous configuration.
    struct H {
        h: History,
        prev: Vec<NodeId>,
        ring: RingId,
        incarnation: u32,
    }

    impl H {
        fn new(node: u32) -> H {
            let mut h = History::new(n(node));
            h.push(t(0), Entry::Start { incarnation: 0 });
            H {
                h,
                prev: vec![n(node)],
                ring: ring(node, 0),
                incarnation: 0,
            }
        }
        fn config(&mut self, ms: u64, kind: ConfigKind, r: RingId, members: &[u32]) -> &mut H {
            let members = ids(members);
            let left = minus(&self.prev, &members);
            let joined = minus(&members, &self.prev);
            self.prev = members.clone();
            if kind == ConfigKind::Regular {
                self.ring = r;
            }
            self.h.push(
                t(ms),
                Entry::Config {
                    kind,
                    ring_id: r,
                    members,
                    left,
                    joined,
                },
            );
            self
        }
        fn regular(&mut self, ms: u64, r: RingId, members: &[u32]) -> &mut H {
            self.config(ms, ConfigKind::Regular, r, members)
        }
        fn trans(&mut self, ms: u64, r: RingId, members: &[u32]) -> &mut H {
            self.config(ms, ConfigKind::Transitional, r, members)
        }
        fn send(&mut self, ms: u64, counter: u64) -> &mut H {
            let id = MsgId {
                origin: self.h.node,
                incarnation: self.incarnation,
                counter,
            };
            let ring_id = self.ring;
            self.h.push(
                t(ms),
                Entry::Send {
                    id,
                    ring_id,
                    state: RingState::Operational,
                },
            );
            self
        }
        fn deliver(&mut self, ms: u64, r: RingId, id: MsgId) -> &mut H {
            self.h.push(
                t(ms),
                Entry::Deliver {
                    ring_id: r,
                    origin: id.origin,
                    msg: Ok(id),
                },
            );
            self
        }
        fn crash(&mut self, ms: u64) -> &mut H {
            self.h.push(t(ms), Entry::Crash);
            self
        }
        fn restart(&mut self, ms: u64) -> &mut H {
            self.incarnation += 1;
            self.prev = vec![self.h.node];
            self.h.push(
                t(ms),
                Entry::Start {
                    incarnation: self.incarnation,
                },
            );
            self
        }
        fn done(&mut self) -> History {
            self.h.clone()
        }
    }

    fn final_node(i: u32, r: RingId, members: &[u32]) -> FinalNode {
        FinalNode {
            node: n(i),
            up: true,
            paused: false,
            state: Some(RingState::Operational),
            ring_id: Some(r),
            members: ids(members),
        }
    }

    /// Three nodes form ring 1.4, node 3 crashes, 1 and 2 go through a
    /// transitional configuration to ring 1.8, node 3 comes back and the
    /// three merge into ring 1.12, where the probes go round.
    fn good_run() -> (Vec<History>, RunFacts) {
        let r4 = ring(1, 4);
        let r8 = ring(1, 8);
        let r12 = ring(1, 12);
        let mut h1 = H::new(1);
        let mut h2 = H::new(2);
        let mut h3 = H::new(3);
        for h in [&mut h1, &mut h2, &mut h3] {
            h.regular(100, r4, &[1, 2, 3]);
        }
        h1.send(110, 0);
        h3.send(111, 0);
        h2.send(112, 0);
        for h in [&mut h1, &mut h2, &mut h3] {
            h.deliver(120, r4, m(1, 0)).deliver(121, r4, m(3, 0));
        }
        h3.crash(130);
        // m2.0 was ordered in 1.4 but only 1 and 2 have it: transitional.
        for h in [&mut h1, &mut h2] {
            h.trans(2000, r8, &[1, 2])
                .deliver(2001, r4, m(2, 0))
                .regular(2002, r8, &[1, 2]);
        }
        h1.send(2010, 1);
        for h in [&mut h1, &mut h2] {
            h.deliver(2020, r8, m(1, 1));
        }
        h3.restart(3000).regular(3100, ring(3, 12 - 4), &[3]);
        for h in [&mut h1, &mut h2] {
            h.trans(4000, r12, &[1, 2]);
        }
        h3.trans(4000, r12, &[3]);
        for h in [&mut h1, &mut h2, &mut h3] {
            h.regular(4001, r12, &[1, 2, 3]);
        }
        let probes = [
            m(1, 2),
            m(2, 1),
            MsgId {
                origin: n(3),
                incarnation: 1,
                counter: 0,
            },
        ];
        h1.send(5000, 2);
        h2.send(5000, 1);
        h3.send(5000, 0);
        for h in [&mut h1, &mut h2, &mut h3] {
            for p in probes {
                h.deliver(5010, r12, p);
            }
        }
        let facts = RunFacts {
            nodes: 3,
            end: t(20_000),
            self_delivery_margin: Duration::from_secs(2),
            liveness: Some(LivenessFacts {
                from: t(3000),
                bound: Duration::from_secs(8),
                converged_at: Some(t(4001)),
                probes: probes.to_vec(),
                probes_refused: vec![],
            }),
            stability: Some(StabilityFacts {
                settle: t(4500),
                min_ring: 3,
            }),
            final_nodes: (1..=3).map(|i| final_node(i, r12, &[1, 2, 3])).collect(),
        };
        (vec![h1.done(), h2.done(), h3.done()], facts)
    }

    fn violated(histories: &[History], facts: &RunFacts) -> Violation {
        check(histories, facts).expect_err("the checker must refuse this history")
    }

    #[test]
    fn a_correct_run_passes() {
        let (h, f) = good_run();
        assert_eq!(check(&h, &f), Ok(()));
    }

    #[test]
    fn total_order_violation() {
        let (mut h, f) = good_run();
        // Node 2 delivers m3.0 before m1.0 in ring 1.4.
        let recs = &mut h[1].records;
        let i = recs
            .iter()
            .position(|r| matches!(r.entry, Entry::Deliver { msg: Ok(id), .. } if id == m(1, 0)))
            .expect("there");
        recs.swap(i, i + 1);
        let v = violated(&h, &f);
        assert_eq!(v.property, Property::TotalOrder, "{v}");
        assert!(
            v.detail.contains("m1.0.0") && v.detail.contains("m3.0.0"),
            "{v}"
        );
    }

    #[test]
    fn duplicate_delivery_violation() {
        let (mut h, f) = good_run();
        let dup = h[0]
            .records
            .iter()
            .find(|r| matches!(r.entry, Entry::Deliver { .. }))
            .expect("a delivery")
            .clone();
        let i = h[0].records.iter().position(|r| *r == dup).expect("there");
        h[0].records.insert(i + 1, dup);
        let v = violated(&h, &f);
        assert_eq!(v.property, Property::Integrity, "{v}");
        assert!(v.detail.contains("twice"), "{v}");
    }

    #[test]
    fn invented_and_corrupt_deliveries() {
        let (mut h, f) = good_run();
        let r = h[0]
            .records
            .iter_mut()
            .find(|r| matches!(r.entry, Entry::Deliver { .. }))
            .expect("a delivery");
        r.entry = Entry::Deliver {
            ring_id: ring(1, 4),
            origin: n(2),
            msg: Ok(m(2, 99)),
        };
        let v = violated(&h, &f);
        assert_eq!(v.property, Property::Integrity, "{v}");
        assert!(v.detail.contains("invented"), "{v}");

        let (mut h, f) = good_run();
        let r = h[0]
            .records
            .iter_mut()
            .find(|r| matches!(r.entry, Entry::Deliver { .. }))
            .expect("a delivery");
        r.entry = Entry::Deliver {
            ring_id: ring(1, 4),
            origin: n(1),
            msg: Err("byte 7 is corrupt".into()),
        };
        assert_eq!(violated(&h, &f).property, Property::Integrity);

        let (mut h, f) = good_run();
        let r = h[0]
            .records
            .iter_mut()
            .find(|r| matches!(r.entry, Entry::Deliver { .. }))
            .expect("a delivery");
        r.entry = Entry::Deliver {
            ring_id: ring(1, 4),
            origin: n(2),
            msg: Ok(m(1, 0)),
        };
        let v = violated(&h, &f);
        assert!(v.detail.contains("as coming from n2"), "{v}");
    }

    #[test]
    fn self_delivery_violation() {
        // Node 2 queues m2.0.5 in ring 1.8 and never delivers it, though it
        // then installs 1.12 and stays there to the end.
        let (mut h, f) = good_run();
        let recs = &mut h[1].records;
        let i = recs
            .iter()
            .position(|r| matches!(r.entry, Entry::Config { kind: ConfigKind::Regular, ring_id, .. } if ring_id == ring(1, 8)))
            .expect("there");
        let send = Entry::Send {
            id: m(2, 5),
            ring_id: ring(1, 8),
            state: RingState::Operational,
        };
        recs.insert(
            i + 1,
            Record {
                at: t(2010),
                entry: send,
            },
        );
        let v = violated(&h, &f);
        assert_eq!(
            (v.property, v.node),
            (Property::SelfDelivery, Some(n(2))),
            "{v}"
        );
        assert!(v.detail.contains("m2.0.5"), "{v}");
        // Had the final ring installed within the margin before the end,
        // the send would not be judged.
        let mut f = f;
        f.end = t(4001) + Duration::from_millis(1500);
        f.liveness = None;
        f.stability = None;
        assert_eq!(check(&h, &f), Ok(()));
    }

    #[test]
    fn virtual_synchrony_violations() {
        // Node 1 does not deliver m2.0 in the transitional configuration,
        // node 2 does; both go 1.4 -> 1.8.
        let (mut h, f) = good_run();
        h[0].records.retain(
            |r| !(matches!(&r.entry, Entry::Deliver { msg: Ok(id), .. } if *id == m(2, 0))),
        );
        let v = violated(&h, &f);
        assert_eq!(v.property, Property::VirtualSynchrony, "{v}");
        assert!(v.detail.contains("m2.0.0"), "{v}");

        // A message of the old ring delivered in the new regular
        // configuration.
        let (mut h, f) = good_run();
        let r = h[0]
            .records
            .iter_mut()
            .rev()
            .find(|r| matches!(r.entry, Entry::Deliver { .. }))
            .expect("a delivery");
        let Entry::Deliver { ring_id, .. } = &mut r.entry else {
            unreachable!()
        };
        *ring_id = ring(1, 8);
        let v = violated(&h, &f);
        assert_eq!(v.property, Property::VirtualSynchrony, "{v}");
        assert!(v.detail.contains("while its configuration is"), "{v}");
    }

    #[test]
    fn membership_violations() {
        // Disagreement on ring 1.12's members.
        let (mut h, f) = good_run();
        for r in &mut h[2].records {
            if let Entry::Config {
                kind: ConfigKind::Regular,
                ring_id,
                members,
                joined,
                ..
            } = &mut r.entry
            {
                if *ring_id == ring(1, 12) {
                    *members = ids(&[1, 3]);
                    *joined = ids(&[1]);
                }
            }
        }
        let v = violated(&h, &f);
        assert_eq!(v.property, Property::Membership, "{v}");

        // A node not in its own configuration.
        let mut h = H::new(1);
        let h = vec![h.regular(10, ring(2, 4), &[2, 3]).done()];
        let v = check_membership(&h, 3).expect_err("refused");
        assert!(v.detail.contains("not in its own"), "{v}");

        // Ring ids that go backwards across a restart.
        let mut h = H::new(1);
        let h = vec![h
            .regular(10, ring(1, 8), &[1])
            .crash(20)
            .restart(30)
            .regular(40, ring(1, 4), &[1])
            .done()];
        let v = check_membership(&h, 3).expect_err("refused");
        assert!(v.detail.contains("must grow"), "{v}");

        // A transitional configuration not followed by its regular one.
        let mut h = H::new(1);
        let h = vec![h
            .regular(10, ring(1, 4), &[1])
            .trans(20, ring(1, 8), &[1])
            .regular(30, ring(1, 12), &[1])
            .done()];
        let v = check_membership(&h, 3).expect_err("refused");
        assert!(v.detail.contains("not followed"), "{v}");

        // Wrong left list.
        let (mut h, f) = good_run();
        for r in &mut h[0].records {
            if let Entry::Config {
                kind: ConfigKind::Transitional,
                left,
                ..
            } = &mut r.entry
            {
                left.clear();
            }
        }
        let v = violated(&h, &f);
        assert_eq!(v.property, Property::Membership, "{v}");
        assert!(v.detail.contains("expected left"), "{v}");
    }

    #[test]
    fn liveness_violations() {
        let (h, mut f) = good_run();
        f.liveness.as_mut().expect("set").converged_at = None;
        let v = violated(&h, &f);
        assert_eq!(v.property, Property::Liveness, "{v}");

        let (h, mut f) = good_run();
        f.liveness.as_mut().expect("set").converged_at = Some(t(11_001));
        assert_eq!(violated(&h, &f).property, Property::Liveness);

        // A probe node 3 never delivered.
        let (mut h, f) = good_run();
        h[2].records.pop();
        let v = violated(&h, &f);
        assert_eq!(
            (v.property, v.node),
            (Property::Liveness, Some(n(3))),
            "{v}"
        );

        // The ring broke up again before the end.
        let (h, mut f) = good_run();
        f.final_nodes[1].state = Some(RingState::Gather);
        assert_eq!(violated(&h, &f).property, Property::Liveness);
    }

    #[test]
    fn stability_violations() {
        let (mut h, f) = good_run();
        let config = Entry::Config {
            kind: ConfigKind::Transitional,
            ring_id: ring(1, 16),
            members: ids(&[1, 2]),
            left: ids(&[3]),
            joined: vec![],
        };
        h[0].push(t(6000), config);
        let v = violated(&h, &f);
        assert_eq!(v.property, Property::Stability, "{v}");
        assert!(v.detail.contains("after the settling time"), "{v}");

        let (h, mut f) = good_run();
        f.liveness = None;
        f.final_nodes = vec![
            final_node(1, ring(1, 12), &[1]),
            final_node(2, ring(2, 12), &[2]),
            final_node(3, ring(3, 12), &[3]),
        ];
        let v = violated(&h, &f);
        assert!(v.detail.contains("largest ring"), "{v}");
    }
}
