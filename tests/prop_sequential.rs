//! Sequential model test of the in-memory recorder (the machinery is
//! `async_tasks_recorder_harness::sequential`, shared with every backend):
//! random operation sequences over a few ids applied to the recorder and to
//! `spec::step`; every response, every id's state and every woken `wait` must
//! agree after every step. The bites run the same test against known-bad
//! protocols and mutants, which it must reject.

#[path = "common/mutants.rs"]
mod mutants;
#[path = "common/protocols.rs"]
mod protocols;

use async_tasks_recorder::AsyncTasksRecorder;
use async_tasks_recorder_harness::sequential::{Model, STEPS, Spec, counterexample};
use async_tasks_recorder_harness::subject::{Via, cases};
use proptest::test_runner::{Config, TestRunner};
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest, prop_state_machine};
use protocols::{AllSet202, Id, LostWakeup, ThreeSets};

type Recorder = AsyncTasksRecorder<Id>;

prop_state_machine! {
    #![proptest_config(Config {
        cases: cases(256),
        ..Config::default()
    })]

    #[test]
    fn the_recorder_agrees_with_the_spec_after_every_step(sequential STEPS => Model<Recorder>);
}

#[test]
fn bites_the_three_set_protocol() {
    counterexample::<Via<ThreeSets>>();
}

#[test]
fn bites_the_published_two_zero_two() {
    counterexample::<Via<AllSet202>>();
}

#[test]
fn bites_the_lost_wake_up_mutant() {
    counterexample::<Via<LostWakeup>>();
}

#[test]
fn bites_the_stale_success_listing_mutant() {
    counterexample::<Via<mutants::StaleSuccessList>>();
}

#[test]
fn bites_the_stale_failed_index_mutant() {
    let found = counterexample::<Via<mutants::StaleFailedIndex>>();
    assert!(found.contains("list(Failed) against the spec"), "{found}");
}

#[test]
fn the_protocol_adapter_itself_agrees_with_the_spec() {
    // `Via` builds the recorder's missing operations for the bad protocols;
    // over the real recorder it must pass, or the bites prove nothing.
    let config = Config {
        cases: cases(64),
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config.clone());
    runner
        .run(
            &Spec::sequential_strategy(STEPS),
            |(phases, steps, seen)| {
                Model::<Via<Recorder>>::test_sequential(config.clone(), phases, steps, seen);
                Ok(())
            },
        )
        .unwrap();
}
