//! The linearizability checker accepts what the spec allows and rejects
//! hand-written histories that no sequential order explains.

use async_tasks_recorder::TaskState::{self, Failed, NotFound, Success, Working};
use async_tasks_recorder::spec::{self, Op, Outcome, Phase, Response, RevokeRefusal};
use async_tasks_recorder_harness::linearizability::{self, Violation};
use async_tasks_recorder_harness::operation::{Operation, StepSpec};
use proptest::prelude::*;

/// One id's operation, stamped by a counter.
type Event = linearizability::Event<Operation>;

/// The checker against `spec::step`.
fn check(history: &[Event]) -> Result<Vec<usize>, Violation<Operation>> {
    linearizability::check(&StepSpec, history)
}

const ACCEPTED: Response = Response::Accepted;

fn at(operation: Operation, invoked: u64, returned: u64) -> Event {
    Event::new(operation, invoked, returned)
}

fn launch(invoked: u64, returned: u64) -> Event {
    at(Operation::Launch(ACCEPTED), invoked, returned)
}

fn finish(outcome: Outcome, invoked: u64, returned: u64) -> Event {
    at(Operation::Finish(outcome), invoked, returned)
}

fn query(state: TaskState, invoked: u64, returned: u64) -> Event {
    at(Operation::Query(state), invoked, returned)
}

fn assert_rejected(history: &[Event]) {
    match check(history) {
        Ok(order) => panic!("accepted a non-linearizable history as {order:?}: {history:?}"),
        Err(violation) => eprintln!("rejected as expected:\n{violation}"),
    }
}

#[test]
fn a_sequential_launch_fail_retry_revoke_is_linearizable() {
    let history = [
        query(NotFound, 0, 1),
        launch(2, 3),
        query(Working, 4, 5),
        finish(Outcome::Err, 6, 7),
        at(Operation::Wait(Failed), 8, 9),
        launch(10, 11),
        finish(Outcome::Ok, 12, 13),
        at(Operation::Launch(Response::LaunchRefused(Success)), 14, 15),
        at(Operation::BeginRevoke(ACCEPTED), 16, 17),
        at(
            Operation::BeginRevoke(Response::RevokeRefused(RevokeRefusal::Revoking)),
            18,
            19,
        ),
        at(Operation::QuickQuery(Success), 20, 21),
        at(Operation::FinishRevoke(Outcome::Ok), 22, 23),
        query(NotFound, 24, 25),
        at(Operation::QuickQuery(Working), 26, 27),
    ];
    assert_eq!(check(&history).unwrap().len(), history.len());
}

#[test]
fn overlapping_reads_may_take_effect_on_either_side_of_a_launch() {
    // Both reads overlap the launch: the first before it, the second after.
    let history = [
        launch(0, 10),
        query(NotFound, 1, 2),
        query(Working, 3, 4),
        finish(Outcome::Ok, 11, 12),
    ];
    assert_eq!(check(&history).unwrap(), vec![1, 0, 2, 3]);
}

#[test]
fn concurrent_launchers_are_linearizable_when_one_is_refused() {
    let history = [
        launch(0, 5),
        at(Operation::Launch(Response::LaunchRefused(Working)), 1, 6),
        finish(Outcome::Ok, 7, 8),
        at(Operation::Launch(Response::LaunchRefused(Success)), 9, 10),
    ];
    assert!(check(&history).is_ok());
}

#[test]
fn rejects_working_then_not_found_for_one_observer() {
    assert_rejected(&[
        launch(0, 1),
        query(Working, 2, 3),
        query(NotFound, 4, 5),
        finish(Outcome::Err, 6, 7),
    ]);
}

#[test]
fn rejects_two_successes_in_one_epoch() {
    assert_rejected(&[
        launch(0, 1),
        finish(Outcome::Ok, 2, 3),
        launch(4, 5),
        finish(Outcome::Ok, 6, 7),
    ]);
}

#[test]
fn rejects_two_overlapping_accepted_launches() {
    assert_rejected(&[
        launch(0, 3),
        launch(1, 2),
        finish(Outcome::Ok, 4, 5),
        finish(Outcome::Ok, 6, 7),
    ]);
}

#[test]
fn rejects_a_read_of_a_state_never_reached() {
    // The only attempt succeeds; `Failed` is never a state of this id.
    assert_rejected(&[launch(0, 1), query(Failed, 2, 5), finish(Outcome::Ok, 3, 4)]);
    // The quick query never reports `NotFound`.
    assert_rejected(&[at(Operation::QuickQuery(NotFound), 0, 1)]);
}

#[test]
fn rejects_a_wait_that_returns_working() {
    assert_rejected(&[launch(0, 1), at(Operation::Wait(Working), 2, 3)]);
}

#[test]
fn rejects_a_read_that_precedes_its_cause_in_real_time() {
    assert_rejected(&[query(Working, 0, 1), launch(2, 3)]);
}

#[test]
fn rejects_a_success_after_the_revoke_completed() {
    assert_rejected(&[
        launch(0, 1),
        finish(Outcome::Ok, 2, 3),
        at(Operation::BeginRevoke(ACCEPTED), 4, 5),
        at(Operation::FinishRevoke(Outcome::Ok), 6, 7),
        query(Success, 8, 9),
    ]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Every history built by stretching each operation of a sequential spec
    /// run into an interval around its point is linearizable.
    #[test]
    fn accepts_every_history_stretched_around_a_sequential_run(
        steps in proptest::collection::vec((0u8..8, 0u64..40, 0u64..40), 1..40)
    ) {
        let mut phase = Phase::NotFound;
        let mut history = Vec::new();
        for (i, (kind, before, after)) in steps.into_iter().enumerate() {
            let (operation, next) = match (kind, phase) {
                (0, _) => {
                    let (next, response) = spec::step(phase, Op::Launch);
                    (Operation::Launch(response), next)
                }
                (1 | 2, Phase::Working) => {
                    let outcome = if kind == 1 { Outcome::Ok } else { Outcome::Err };
                    (Operation::Finish(outcome), spec::step(phase, Op::Finish(outcome)).0)
                }
                (3, _) => {
                    let (next, response) = spec::step(phase, Op::BeginRevoke);
                    (Operation::BeginRevoke(response), next)
                }
                (4 | 5, Phase::Revoking) => {
                    let outcome = if kind == 4 { Outcome::Ok } else { Outcome::Err };
                    (Operation::FinishRevoke(outcome), spec::step(phase, Op::FinishRevoke(outcome)).0)
                }
                (6, _) => (Operation::QuickQuery(phase.quick_state()), phase),
                _ => (Operation::Query(phase.state()), phase),
            };
            phase = next;
            // Point i sits at 100 * i + 50; intervals stay within the point's
            // slot widened into its neighbours, all readings distinct.
            let point = 100 * i as u64 + 50;
            history.push(at(operation, point - before - 1, point + after + 1 + 100 * (i as u64 % 2)));
        }
        // Readings must be distinct: nudge duplicates apart.
        let mut seen = std::collections::HashSet::new();
        for event in &mut history {
            while !seen.insert(event.invoked) { event.invoked -= 1; }
            while !seen.insert(event.returned) { event.returned += 1; }
        }
        prop_assert!(check(&history).is_ok(), "{history:?}");
    }
}
