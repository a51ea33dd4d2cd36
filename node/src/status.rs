//! The ring status the CFG service answers: who this node is, the ring it
//! is in, and every counter worth watching.

use proto::status::{Member, RingId, RingState, RingStatus};
use totem::RingState as TotemState;

use crate::node::Node;

/// Builds the status of `node`.
pub(crate) fn ring_status(node: &Node) -> RingStatus {
    let totem = node.totem();
    let ring = totem.ring_id();
    let members = totem
        .members()
        .iter()
        .map(|id| {
            let info = node.directory().get(id);
            Member {
                id: id.get(),
                addr: info.map(|i| i.addr.clone()).unwrap_or_default(),
                name: info.map(|i| i.name.clone()).unwrap_or_default(),
            }
        })
        .collect();
    let state = match totem.state() {
        TotemState::Operational => RingState::Operational,
        TotemState::Gather => RingState::Gather,
        TotemState::Commit => RingState::Commit,
        TotemState::Recovery => RingState::Recovery,
    };
    let t = totem.stats();
    let s = node.services().stats();
    let n = node.stats();
    let mut counters: Vec<(&str, u64)> = vec![
        ("tokens_received", t.tokens_received),
        ("token_retransmits", t.token_retransmits),
        ("mcasts_sent", t.mcasts_sent),
        ("mcasts_retransmitted", t.mcasts_retransmitted),
        ("delivered", t.delivered),
        ("rings_installed", t.rings_installed),
        ("gathers", t.gathers),
        ("dropped_malformed", t.dropped_malformed),
        ("dropped_foreign", t.dropped_foreign),
        ("dropped_duplicate", t.dropped_duplicate),
        ("dropped_frames", t.dropped_frames),
        ("dropped_too_far_ahead", t.dropped_too_far_ahead),
        ("hold_cancels_sent", t.hold_cancels_sent),
        ("holds_cancelled", t.holds_cancelled),
        ("queued_bytes", totem.queued_bytes() as u64),
        ("sync_rounds", s.sync_rounds),
        ("refused_during_sync", s.refused_during_sync),
        ("dropped_exec", s.dropped_exec),
        ("clients", node.client_count() as u64),
        ("clients_accepted", n.clients_accepted),
        ("clients_refused", n.clients_refused),
        ("clients_violations", n.clients_violations),
        ("clients_bad_setup", n.clients_bad_setup),
        ("requests", n.requests),
    ];
    counters.extend(node.driver_counters().iter().copied());
    RingStatus {
        node_id: totem.node_id().get(),
        ring_id: RingId {
            seq: ring.seq,
            rep: ring.rep.get(),
        },
        state,
        members,
        counters: counters
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
        sync_done: node.services().synced(),
    }
}
