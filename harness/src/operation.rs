//! What the harness observes of one id, and its meaning in `spec::step`:
//! the [`Model`] the concurrent runs' histories are checked against.

use crate::linearizability::Model;
use async_tasks_recorder::TaskState;
use async_tasks_recorder::spec::{self, Op, Outcome, Phase, Response};

/// One operation on an id, with what its caller observed.
#[derive(Clone, Copy, Debug, Eq, PartialEq, Hash)]
pub enum Operation {
    /// A launch, accepted or refused.
    Launch(Response),
    /// The attempt that owned `Working` ended; the recorder never refuses it.
    Finish(Outcome),
    /// A revoke's start, accepted or refused.
    BeginRevoke(Response),
    /// The revoke that owned `Revoking` ended.
    FinishRevoke(Outcome),
    /// `query_task_state` returned this.
    Query(TaskState),
    /// `query_task_state_quick` returned this.
    QuickQuery(TaskState),
    /// `wait` returned this.
    Wait(TaskState),
}

impl Operation {
    /// The phase after this operation takes effect in `phase`, or `None` when
    /// the spec could not have answered what the caller observed.
    pub fn apply(self, phase: Phase) -> Option<Phase> {
        let answered = |op, seen| {
            let (next, response) = spec::step(phase, op);
            (response == seen).then_some(next)
        };
        let read = |ok: bool| ok.then_some(phase);
        match self {
            Operation::Launch(seen) => answered(Op::Launch, seen),
            Operation::Finish(outcome) => answered(Op::Finish(outcome), Response::Accepted),
            Operation::BeginRevoke(seen) => answered(Op::BeginRevoke, seen),
            Operation::FinishRevoke(outcome) => {
                answered(Op::FinishRevoke(outcome), Response::Accepted)
            }
            Operation::Query(state) => read(phase.state() == state),
            Operation::QuickQuery(state) => read(phase.quick_state() == state),
            Operation::Wait(state) => read(state != TaskState::Working && phase.state() == state),
        }
    }
}

/// `spec::step` as a linearizability model: one [`Phase`] per id, from
/// `NotFound`, and exactly one next phase for every answer the spec allows.
#[derive(Clone, Copy, Debug, Default)]
pub struct StepSpec;

impl Model for StepSpec {
    type State = Phase;
    type Operation = Operation;

    fn initial(&self) -> Phase {
        Phase::NotFound
    }

    fn apply(&self, phase: Phase, operation: &Operation) -> impl IntoIterator<Item = Phase> {
        operation.apply(phase)
    }
}
