//! Concurrent schedules against the in-memory recorder (the machinery is
//! `async_tasks_recorder_harness::concurrent`, shared with every backend),
//! and the bites: the same schedules against known-bad protocols and
//! mutants, which must break a property.

#[path = "common/mutants.rs"]
mod mutants;
#[path = "common/protocols.rs"]
mod protocols;

use async_tasks_recorder::AsyncTasksRecorder;
use async_tasks_recorder_harness::concurrent::{
    ABRUPT, GRACEFUL, counterexample, run_schedule, schedule, wait_storm,
};
use async_tasks_recorder_harness::subject::{Via, cases};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use protocols::{AllSet202, Id, LostWakeup, ThreeSets};

type Recorder = AsyncTasksRecorder<Id>;

proptest! {
    #![proptest_config(Config {
        cases: cases(24),
        ..Config::default()
    })]

    #[test]
    fn concurrent_schedules_keep_every_property(schedule in schedule(ABRUPT)) {
        run_schedule::<Recorder>(&schedule)?;
    }
}

#[test]
fn bites_the_three_set_protocol() {
    counterexample::<Via<ThreeSets>, _>(schedule(ABRUPT), 256);
}

#[test]
fn bites_the_published_two_zero_two() {
    counterexample::<Via<AllSet202>, _>(schedule(ABRUPT), 256);
}

#[test]
fn bites_the_lost_wake_up_mutant_with_graceful_tasks_only() {
    counterexample::<Via<LostWakeup>, _>(wait_storm(), 4096);
}

#[test]
fn bites_the_split_launch_mutant() {
    counterexample::<Via<mutants::SplitLaunch>, _>(schedule(GRACEFUL), 256);
}

#[test]
fn bites_the_stale_success_listing_mutant() {
    counterexample::<Via<mutants::StaleSuccessList>, _>(schedule(GRACEFUL), 256);
}

#[test]
fn bites_the_stale_failed_index_mutant() {
    let found = counterexample::<Via<mutants::StaleFailedIndex>, _>(schedule(GRACEFUL), 256);
    assert!(found.contains("list(Failed) = "), "{found}");
}

#[test]
fn the_recorder_keeps_every_property_in_wait_storms() {
    let config = Config {
        cases: cases(16),
        failure_persistence: None,
        ..Config::default()
    };
    TestRunner::new(config)
        .run(&wait_storm(), |s| run_schedule::<Recorder>(&s))
        .unwrap();
}

#[test]
fn the_protocol_adapter_itself_keeps_every_property() {
    let config = Config {
        cases: cases(8),
        failure_persistence: None,
        ..Config::default()
    };
    TestRunner::new(config)
        .run(&schedule(ABRUPT), |s| run_schedule::<Via<Recorder>>(&s))
        .unwrap();
}
