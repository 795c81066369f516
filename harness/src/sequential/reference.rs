//! The reference side of the model test: the steps a sequence is made of,
//! the strategies that draw them, and one `Phase` per id moved by
//! `spec::step` alone.

use crate::protocol::{End, Id};
use async_tasks_recorder::TaskState;
use async_tasks_recorder::spec::{self, Op, Outcome, Phase};
use proptest::prelude::*;
use proptest::strategy::Union;
use proptest_state_machine::ReferenceStateMachine;

/// Ids `0..IDS`.
pub const IDS: usize = 3;

/// How an accepted launch runs its task.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum Launcher {
    /// `launch`: spawned by the recorder.
    Spawned,
    /// `launch_block`, itself in a spawned task.
    Block,
}

impl End {
    pub(super) fn outcome(self) -> Outcome {
        if self == End::Ok {
            Outcome::Ok
        } else {
            Outcome::Err
        }
    }
}

/// One step of a sequence.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum Step {
    Launch(Id, Launcher),
    /// Ends the id's running attempt.
    End(Id, End),
    /// Starts a gated revoke.
    BeginRevoke(Id),
    /// Ends the id's running revoke.
    EndRevoke(Id, End),
    Query(Id),
    QuickQuery(Id),
    /// Waits; on a `Working` id the waiter stays pending until a later step.
    Wait(Id),
    List(TaskState),
    Counts,
}

/// The reference: one `Phase` per id, moved by `spec::step` alone.
pub struct Spec;

pub type Phases = [Phase; IDS];

fn id() -> impl Strategy<Value = Id> {
    0..IDS as Id
}

fn one_of(ids: Vec<Id>) -> impl Strategy<Value = Id> {
    proptest::sample::select(ids)
}

pub(super) fn ids_in(phases: &Phases, phase: Phase) -> Vec<Id> {
    (0..IDS as Id)
        .filter(|&id| phases[id as usize] == phase)
        .collect()
}

impl ReferenceStateMachine for Spec {
    type State = Phases;
    type Transition = Step;

    fn init_state() -> BoxedStrategy<Phases> {
        Just([Phase::NotFound; IDS]).boxed()
    }

    fn transitions(phases: &Phases) -> BoxedStrategy<Step> {
        let launcher = prop_oneof![Just(Launcher::Spawned), Just(Launcher::Block)];
        let state = prop_oneof![
            Just(TaskState::Working),
            Just(TaskState::Success),
            Just(TaskState::Failed),
            Just(TaskState::NotFound),
        ];
        let mut steps: Vec<(u32, BoxedStrategy<Step>)> = vec![
            (
                5,
                (id(), launcher)
                    .prop_map(|(id, l)| Step::Launch(id, l))
                    .boxed(),
            ),
            (3, id().prop_map(Step::BeginRevoke).boxed()),
            (2, id().prop_map(Step::Query).boxed()),
            (1, id().prop_map(Step::QuickQuery).boxed()),
            (2, id().prop_map(Step::Wait).boxed()),
            (1, state.prop_map(Step::List).boxed()),
            (1, Just(Step::Counts).boxed()),
        ];
        let working = ids_in(phases, Phase::Working);
        if !working.is_empty() {
            let end = prop_oneof![
                3 => Just(End::Ok),
                2 => Just(End::Err),
                1 => Just(End::Panic),
                1 => Just(End::Cancel),
            ];
            steps.push((
                8,
                (one_of(working), end)
                    .prop_map(|(id, end)| Step::End(id, end))
                    .boxed(),
            ));
        }
        let revoking = ids_in(phases, Phase::Revoking);
        if !revoking.is_empty() {
            let end = prop_oneof![
                2 => Just(End::Ok),
                1 => Just(End::Err),
                1 => Just(End::Cancel),
            ];
            steps.push((
                6,
                (one_of(revoking), end)
                    .prop_map(|(id, end)| Step::EndRevoke(id, end))
                    .boxed(),
            ));
        }
        Union::new_weighted(steps).boxed()
    }

    fn apply(mut phases: Phases, step: &Step) -> Phases {
        let (id, op) = match *step {
            Step::Launch(id, _) => (id, Op::Launch),
            Step::End(id, end) => (id, Op::Finish(end.outcome())),
            Step::BeginRevoke(id) => (id, Op::BeginRevoke),
            Step::EndRevoke(id, end) => (id, Op::FinishRevoke(end.outcome())),
            _ => return phases,
        };
        let phase = &mut phases[id as usize];
        *phase = spec::step(*phase, op).0;
        phases
    }

    fn preconditions(phases: &Phases, step: &Step) -> bool {
        match *step {
            Step::End(id, _) => phases[id as usize] == Phase::Working,
            Step::EndRevoke(id, _) => phases[id as usize] == Phase::Revoking,
            _ => true,
        }
    }
}
