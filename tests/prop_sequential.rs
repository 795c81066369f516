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
use async_tasks_recorder_harness::sequential::{self, Kind, Model, STEPS, counterexample};
use async_tasks_recorder_harness::subject::{Subject, Via};
use async_tasks_recorder_harness::support::cases;
use proptest::test_runner::Config;
use proptest_state_machine::prop_state_machine;
use protocols::{AllSet202, Id, ThreeSets};

type Recorder = AsyncTasksRecorder<Id>;

/// Runs the model test against `S` and asserts that its shrunk
/// counterexample disagrees with the spec in the `expected` way.
fn bites<S: Subject + Default>(expected: Kind) {
    let found = counterexample::<S>();
    assert_eq!(found.mismatch.kind, expected, "{}", found.report);
}

prop_state_machine! {
    #![proptest_config(Config {
        cases: cases(256),
        ..Config::default()
    })]

    #[test]
    fn the_recorder_agrees_with_the_spec_after_every_step(sequential STEPS => Model<Recorder>);
}

/// The published crates have no drop guard: a task that panics leaves its
/// id `Working`, where the spec says `Failed`.
#[test]
fn bites_the_three_set_protocol() {
    bites::<Via<ThreeSets>>(Kind::State);
}

#[test]
fn bites_the_published_two_zero_two() {
    bites::<Via<AllSet202>>(Kind::State);
}

/// A revoke whose compensation fails leaves the id `NotFound`, where the
/// spec returns it to `Success`.
#[test]
fn bites_the_failed_revoke_removal_mutant() {
    bites::<Via<mutants::FailedRevokeRemoves>>(Kind::State);
}

// The split-launch and lost-wake-up mutants differ from the spec only when
// two calls interleave, which a sequence of steps never does: the
// concurrent properties and loom bite them.

#[test]
fn the_mutants_base_itself_agrees_with_the_spec() {
    // The family's base with no step changed must pass, or a mutant's
    // counterexample may be the base's defect rather than its own.
    sequential::check::<Via<mutants::Faithful>>(cases(64));
}

#[test]
fn bites_the_stale_failed_index_mutant() {
    bites::<Via<mutants::StaleFailedIndex>>(Kind::Listing);
}

#[test]
fn the_protocol_adapter_itself_agrees_with_the_spec() {
    // `Via` builds the recorder's missing operations for the bad protocols;
    // over the real recorder it must pass, or the bites prove nothing.
    sequential::check::<Via<Recorder>>(cases(64));
}
