//! Property tests over the stateful hostile-input programs that the fuzz
//! targets run (`testsuite::fuzz_harness::programs`): a bounded number of
//! arbitrary inputs each, so `make test` checks on every run what `make
//! fuzz` explores for longer. Each program asserts on its own (no panic,
//! well-formed answers, the ring unmoved by clients).

use proptest::collection::vec;
use proptest::prelude::*;
use proto::ServiceId;
use testsuite::fuzz_harness::programs;

/// Inputs per program. Each case builds a ready node or ring first (a few
/// milliseconds in a debug build, well under one in release), so this keeps
/// the file near a few seconds in release.
const CASES: u32 = 1000;

fn input() -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..768)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, ..ProptestConfig::default() })]

    #[test]
    fn setup_frames_never_break_the_node(data in input()) {
        programs::setup(&data);
    }

    #[test]
    fn cfg_requests_never_break_the_node(data in input()) {
        programs::requests(ServiceId::Cfg, &data);
    }

    #[test]
    fn clm_requests_never_break_the_node(data in input()) {
        programs::requests(ServiceId::Clm, &data);
    }

    #[test]
    fn evs_requests_never_break_the_node(data in input()) {
        programs::requests(ServiceId::Evs, &data);
    }

    #[test]
    fn ckpt_requests_never_break_the_node(data in input()) {
        programs::requests(ServiceId::Ckpt, &data);
    }

    #[test]
    fn exec_messages_never_break_the_engines(data in input()) {
        programs::exec_deliver(&data);
    }

    #[test]
    fn corrupted_ring_traffic_never_breaks_totem(data in input()) {
        programs::totem_ring(&data);
    }
}
