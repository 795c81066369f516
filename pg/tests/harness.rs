//! The shared harness (`async_tasks_recorder_harness`) run against the
//! PostgreSQL backend: the same sequential model test and the same
//! concurrent schedules, with the same linearizability checker, that check
//! the in-memory recorder.
//!
//! The adapter (`common/adapter.rs`) keeps every database call on one
//! background runtime of its own, and settles every attempt before its
//! caller moves on, as the in-memory recorder's claim and guard do. (A real caller cancelled during a
//! claim has its grant seen through by a task of its own, which settles the
//! attempt `Err` in the background, `answers.rs`; the harness's quiescence
//! check would count that short while as left `Working`.) Leases are long (60 s), so no lease
//! lapses during a case: with no lapse, `spec::fenced_step` with the
//! holder's own fence is `spec::step` (spec test
//! `fenced_step_delegates_to_step`), which is what the harness
//! checks against. Lapses, takeovers and stale finishes are checked in
//! `leases.rs` and `model.rs`.

mod common;

use async_tasks_recorder_harness::concurrent::{ABRUPT, check_schedule, schedule, wait_storm};
use async_tasks_recorder_harness::sequential::{self, Kind};
use async_tasks_recorder_harness::subject::Via;
use async_tasks_recorder_harness::support::cases;
use common::adapter::Pg;
use proptest::test_runner::{Config as Cases, TestRunner};

#[test]
fn postgres_agrees_with_the_spec_after_every_step() {
    sequential::check::<Via<Pg>>(cases(24));
}

#[test]
fn postgres_keeps_every_property_in_concurrent_schedules() {
    let config = Cases {
        cases: cases(8),
        failure_persistence: None,
        ..Cases::default()
    };
    TestRunner::new(config)
        .run(&schedule(ABRUPT), |schedule| {
            check_schedule::<Via<Pg>>(&schedule).map_err(|violation| {
                proptest::test_runner::TestCaseError::fail(violation.to_string())
            })
        })
        .unwrap();
}

#[test]
fn postgres_keeps_every_property_in_wait_storms() {
    let config = Cases {
        cases: cases(4),
        failure_persistence: None,
        ..Cases::default()
    };
    TestRunner::new(config)
        .run(&wait_storm(), |schedule| {
            check_schedule::<Via<Pg>>(&schedule).map_err(|violation| {
                proptest::test_runner::TestCaseError::fail(violation.to_string())
            })
        })
        .unwrap();
}

/// The shared paging check (the in-memory recorder passes it too):
/// keyset pages of 3 through the `(state, id)` index while ids enter and
/// leave `Failed` between pages, each page exactly the one the rows then
/// give, every id failed throughout returned once, and a `Revoking` row
/// listed as `Success`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_pages_every_id_once_as_ids_come_and_go() {
    let recorder = Pg::<true>::default();
    async_tasks_recorder_harness::paging::check(&recorder)
        .await
        .unwrap_or_else(|why| panic!("{why}"));
}

#[test]
fn the_shared_model_test_catches_an_unguarded_claim_on_postgres() {
    let found = sequential::counterexample::<Via<Pg<false>>>();
    assert_eq!(found.mismatch.kind, Kind::Response, "{}", found.mismatch);
}
