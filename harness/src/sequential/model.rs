//! The model test itself: each step applied to the subject and checked
//! against the reference phases before and after it.

use super::mismatch::{Kind, expect};
use super::reference::{IDS, Phases, Spec, Step, ids_in};
use super::sut::{Sut, runtime};
use crate::bounded::{WATCHDOG, Watchdog};
use crate::protocol::End;
use crate::protocol::Id;
use crate::subject::Subject;
use crate::support;
use async_tasks_recorder::spec::{self, Op, Phase};
use async_tasks_recorder::{StateCounts, TaskState};
use proptest_state_machine::StateMachineTest;
use std::collections::HashMap;
use std::marker::PhantomData;

/// The model test, for any subject.
pub struct Model<S>(PhantomData<S>);

impl<S: Subject + Default> StateMachineTest for Model<S> {
    type SystemUnderTest = Sut<S>;
    type Reference = Spec;

    fn init_test(phases: &Phases) -> Sut<S> {
        support::quiet_task_panics();
        Sut {
            subject: S::default(),
            before: *phases,
            attempts: HashMap::new(),
            revokes: HashMap::new(),
            waiters_runtime: runtime(),
            waiters: Vec::new(),
            _watchdog: Watchdog::arm(
                WATCHDOG,
                format!("a model sequence over ids 0..{IDS} still running: a wait spins"),
            ),
        }
    }

    fn apply(mut sut: Sut<S>, after: &Phases, step: Step) -> Sut<S> {
        let before = sut.before;
        let expected = |id: Id, op| spec::step(before[id as usize], op).1;
        match step {
            Step::Launch(id, launcher) => {
                let response = sut.launch(id, launcher);
                let spec = expected(id, Op::Launch);
                expect(Kind::Response, response == spec, || {
                    format!("{step:?} answered {response:?}, the spec {spec:?}")
                });
            }
            Step::End(id, end) => {
                let attempt = sut.attempts.remove(&id).expect("an attempt runs");
                attempt.end(end);
            }
            Step::BeginRevoke(id) => {
                let response = sut.begin_revoke(id);
                let spec = expected(id, Op::BeginRevoke);
                expect(Kind::Response, response == spec, || {
                    format!("{step:?} answered {response:?}, the spec {spec:?}")
                });
            }
            Step::EndRevoke(id, end) => {
                let revoke = sut.revokes.remove(&id).expect("a revoke runs");
                revoke.end(end);
            }
            Step::Query(id) => {
                let state = sut.subject.query(id);
                let spec = before[id as usize].state();
                expect(Kind::Query, state == spec, || {
                    format!("{step:?} read {state:?}, the spec {spec:?}")
                });
            }
            Step::QuickQuery(id) => {
                let state = sut.subject.query_quick(id);
                let spec = before[id as usize].quick_state();
                expect(Kind::QuickQuery, state == spec, || {
                    format!("{step:?} read {state:?}, the spec {spec:?}")
                });
            }
            Step::Wait(id) => {
                let subject = sut.subject.clone();
                let waiter = sut
                    .waiters_runtime
                    .spawn(async move { subject.wait(id).await });
                sut.waiters.push((id, waiter));
            }
            Step::List(state) => {
                let mut listed = sut.subject.list(state);
                listed.sort_unstable();
                let expected: Vec<Id> = if state == TaskState::NotFound {
                    Vec::new()
                } else {
                    (0..IDS as Id)
                        .filter(|&id| before[id as usize].state() == state)
                        .collect()
                };
                expect(Kind::Listing, listed == expected, || {
                    format!("{step:?} listed {listed:?}, the spec {expected:?}")
                });
            }
            Step::Counts => {
                let count = |state| before.iter().filter(|p| p.state() == state).count();
                let expected = StateCounts {
                    working: count(TaskState::Working),
                    success: count(TaskState::Success),
                    failed: count(TaskState::Failed),
                };
                let counts = sut.subject.counts();
                expect(Kind::Counts, counts == expected, || {
                    format!("{step:?} counted {counts:?}, the spec {expected:?}")
                });
                for state in [TaskState::Working, TaskState::Success, TaskState::Failed] {
                    let count = sut.subject.count(state);
                    expect(Kind::Counts, count == expected.get(state), || {
                        format!(
                            "{step:?}: count({state:?}) is {count}, the spec {}",
                            expected.get(state)
                        )
                    });
                }
            }
        }
        sut.check_waiters(after);
        sut.before = *after;
        sut
    }

    fn check_invariants(sut: &Sut<S>, phases: &Phases) {
        for id in 0..IDS as Id {
            let state = sut.subject.query(id);
            let spec = phases[id as usize].state();
            expect(Kind::State, state == spec, || {
                format!("after the step, id {id} reads {state:?}, the spec {spec:?}")
            });
        }
        // The failed ids, listed and counted from their own index, after
        // every step: the retry sweep's view must follow every transition
        // into and out of `Failed`.
        let mut failed = sut.subject.list(TaskState::Failed);
        failed.sort_unstable();
        let expected = ids_in(phases, Phase::Failed);
        expect(Kind::Listing, failed == expected, || {
            format!("after the step, list(Failed) is {failed:?}, the spec {expected:?}")
        });
        let count = sut.subject.count(TaskState::Failed);
        expect(Kind::Counts, count == expected.len(), || {
            format!(
                "after the step, count(Failed) is {count}, the spec {}",
                expected.len()
            )
        });
    }

    fn teardown(mut sut: Sut<S>, _: Phases) {
        for (_, running) in sut.attempts.drain().chain(sut.revokes.drain()) {
            running.end(End::Cancel);
        }
    }
}
