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
    ABRUPT, FAILING, GRACEFUL, Property, Schedule, counterexample, run_schedule, schedule,
    wait_storm,
};
use async_tasks_recorder_harness::subject::{Subject, Via};
use async_tasks_recorder_harness::support::cases;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use protocols::{AllSet202, Id, ThreeSets};

type Recorder = AsyncTasksRecorder<Id>;

/// Runs `schedules` against `S` until one breaks a property and asserts
/// that the shrunk schedule broke the `expected` one.
fn bites<S, T>(schedules: T, cases: u32, expected: Property)
where
    S: Subject + Default,
    T: Strategy<Value = Schedule>,
{
    bites_one_of::<S, T>(schedules, cases, &[expected]);
}

/// As [`bites`], for a protocol with several defects, each of which breaks
/// one of `expected`; which one a run finds depends on thread timing.
fn bites_one_of<S, T>(schedules: T, cases: u32, expected: &[Property])
where
    S: Subject + Default,
    T: Strategy<Value = Schedule>,
{
    let found = counterexample::<S, _>(schedules, cases);
    assert!(
        expected.contains(&found.violation.property),
        "expected one of {expected:?}, found {}",
        found.report
    );
}

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

/// 0.2.2 has no revoke: a refusal with `NotSuccess` after a success has
/// no place in the spec.
#[test]
fn bites_the_three_set_protocol() {
    bites::<Via<ThreeSets>, _>(schedule(GRACEFUL), 256, Property::Linearizable);
}

/// 2.0.2 has two wedges. A launch refused for `Success` leaves the id in
/// `working`: it is left `Working` once every task has ended. A refused
/// revoke leaves the id in `revoking`: later revokes are refused with
/// `Revoking` while none runs, which no sequential order explains.
#[test]
fn bites_the_published_two_zero_two() {
    bites_one_of::<Via<AllSet202>, _>(
        schedule(GRACEFUL),
        256,
        &[Property::NoneLeftWorking, Property::Linearizable],
    );
}

/// A wait that read `Working` registers after the last finish and sleeps
/// forever.
#[test]
fn bites_the_lost_wake_up_mutant_with_graceful_tasks_only() {
    bites::<Via<mutants::LostWakeup>, _>(wait_storm(), 4096, Property::NoLostWakeup);
}

/// Two launchers both claim one epoch: two accepted launches overlap. The
/// tasks only fail, so the defect shows in the history alone; with tasks
/// that succeed, two successes in one epoch would show it first, or a
/// `Failed` id whose epoch has a success, whichever the timing gives.
#[test]
fn bites_the_split_launch_mutant() {
    bites::<Via<mutants::SplitLaunch>, _>(schedule(FAILING), 256, Property::Linearizable);
}

/// A revoke whose compensation fails removes the id, which then reads
/// `NotFound` though its epoch has its success; a later launch may succeed
/// in the same epoch again. Which of the two a run shows first depends on
/// whether a launcher retries after the failed revoke.
#[test]
fn bites_the_failed_revoke_removal_mutant() {
    bites_one_of::<Via<mutants::FailedRevokeRemoves>, _>(
        schedule(GRACEFUL),
        256,
        &[
            Property::SuccessIffEpochSucceeded,
            Property::OneSuccessPerEpoch,
        ],
    );
}

#[test]
fn the_mutants_base_itself_keeps_every_property() {
    // The family's base with no step changed must pass, or a mutant's
    // counterexample may be the base's defect rather than its own.
    let config = Config {
        cases: cases(8),
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    runner
        .run(&schedule(ABRUPT), |s| {
            run_schedule::<Via<mutants::Faithful>>(&s)
        })
        .unwrap();
    runner
        .run(&wait_storm(), |s| {
            run_schedule::<Via<mutants::Faithful>>(&s)
        })
        .unwrap();
}

#[test]
fn bites_the_stale_failed_index_mutant() {
    bites::<Via<mutants::StaleFailedIndex>, _>(schedule(GRACEFUL), 256, Property::ListingsAgree);
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
