//! The sequential specification: one id's phases, the operations that move
//! it, and the single transition function [`step`].
//!
//! This module is pure: no locks, no atomics, no futures. The table
//! (`src/table.rs`) applies [`step`] inside the map's per-entry critical
//! section, so the concurrent recorder and this state machine cannot drift
//! apart; the tests use the same functions as their reference model.
//!
//! ```text
//!              Launch                 Finish(Ok)
//!   NotFound ─────────► Working ───────────────► Success ──BeginRevoke──► Revoking
//!      ▲                 │   ▲                      ▲                       │
//!      │      Finish(Err)│   │Launch                └────FinishRevoke(Err)──┤
//!      │                 ▼   │                                              │
//!      │                 Failed                                             │
//!      └──────────────────────────────────FinishRevoke(Ok)──────────────────┘
//! ```
//!
//! Every pair (phase, operation) not drawn above leaves the phase unchanged:
//! a refused launch or revoke has no residue (proofs/P6-no-wedged-id.md), a
//! failure only makes the id launchable again (proofs/P2-failure-harmless.md),
//! and only a completed revoke returns to `NotFound`
//! (proofs/P3-no-return-to-not-found.md).

/// The state of a task id as callers observe it.
#[derive(Clone, Copy, Debug, Eq, PartialEq, Hash)]
pub enum TaskState {
    /// A launch has been accepted and its task has not ended yet.
    Working,
    /// The task of the current revoke epoch returned `Ok`.
    Success,
    /// The last attempt returned `Err`, panicked or was dropped; it may be launched again.
    Failed,
    /// Never launched, or revoked.
    NotFound,
}

/// The full phase of one id: [`TaskState`] plus whether a revoke is running.
///
/// A revoking id reads [`TaskState::Success`] and refuses launches with
/// `Success`, so `Revoking` is visible only to revokers.
#[derive(Clone, Copy, Debug, Eq, PartialEq, Hash)]
#[repr(u8)]
pub enum Phase {
    /// Absent from the table.
    NotFound,
    /// One attempt owns the id.
    Working,
    /// The last attempt failed.
    Failed,
    /// Succeeded in this epoch, no revoke running.
    Success,
    /// Succeeded in this epoch, one revoke running.
    Revoking,
}

/// How a task or a revoke future ended.
#[derive(Clone, Copy, Debug, Eq, PartialEq, Hash)]
pub enum Outcome {
    /// The future returned `Ok`.
    Ok,
    /// The future returned `Err`, panicked, or was dropped before it finished.
    Err,
}

impl Outcome {
    /// `Ok` when the result is `Ok`.
    pub fn of<R, E>(result: &Result<R, E>) -> Self {
        if result.is_ok() {
            Outcome::Ok
        } else {
            Outcome::Err
        }
    }
}

/// An operation that may change an id's phase.
#[derive(Clone, Copy, Debug, Eq, PartialEq, Hash)]
pub enum Op {
    /// Start an attempt.
    Launch,
    /// The attempt that owns `Working` ended.
    Finish(Outcome),
    /// Start a revoke of a succeeded id.
    BeginRevoke,
    /// The revoke that owns `Revoking` ended.
    FinishRevoke(Outcome),
}

/// Why a revoke was refused.
#[derive(Clone, Copy, Debug, Eq, PartialEq, Hash)]
pub enum RevokeRefusal {
    /// The id is not `Success`.
    NotSuccess,
    /// Another revoke of the id is running.
    Revoking,
}

/// What [`step`] answers.
#[derive(Clone, Copy, Debug, Eq, PartialEq, Hash)]
pub enum Response {
    /// The operation took effect.
    Accepted,
    /// A launch was refused because the id is in this state.
    LaunchRefused(TaskState),
    /// A revoke was refused.
    RevokeRefused(RevokeRefusal),
    /// A finish that no running attempt or revoke owns. The recorder never
    /// issues one; the phase stays as it was.
    Ignored,
}

impl Phase {
    /// What [`query_task_state`](crate::AsyncTasksRecorder::query_task_state) reports.
    pub const fn state(self) -> TaskState {
        match self {
            Phase::NotFound => TaskState::NotFound,
            Phase::Working => TaskState::Working,
            Phase::Failed => TaskState::Failed,
            Phase::Success | Phase::Revoking => TaskState::Success,
        }
    }

    /// What [`query_task_state_quick`](crate::AsyncTasksRecorder::query_task_state_quick)
    /// reports: the 2.x contract, `Working` unless the id is `Success` or `Failed`.
    pub const fn quick_state(self) -> TaskState {
        match self.state() {
            TaskState::NotFound => TaskState::Working,
            state => state,
        }
    }
}

/// The transition function: the phase after `op` and the answer to it.
///
/// Linearization: the recorder calls this exactly once per mutating
/// operation, inside the map's exclusive per-entry section
/// (`src/table.rs:Table::apply`).
pub const fn step(phase: Phase, op: Op) -> (Phase, Response) {
    use Phase::*;
    match (phase, op) {
        (NotFound | Failed, Op::Launch) => (Working, Response::Accepted),
        (Working, Op::Launch) => (phase, Response::LaunchRefused(TaskState::Working)),
        (Success | Revoking, Op::Launch) => (phase, Response::LaunchRefused(TaskState::Success)),

        (Working, Op::Finish(Outcome::Ok)) => (Success, Response::Accepted),
        (Working, Op::Finish(Outcome::Err)) => (Failed, Response::Accepted),

        (Success, Op::BeginRevoke) => (Revoking, Response::Accepted),
        (Revoking, Op::BeginRevoke) => (phase, Response::RevokeRefused(RevokeRefusal::Revoking)),
        (NotFound | Working | Failed, Op::BeginRevoke) => {
            (phase, Response::RevokeRefused(RevokeRefusal::NotSuccess))
        }

        (Revoking, Op::FinishRevoke(Outcome::Ok)) => (NotFound, Response::Accepted),
        (Revoking, Op::FinishRevoke(Outcome::Err)) => (Success, Response::Accepted),

        (_, Op::Finish(_) | Op::FinishRevoke(_)) => (phase, Response::Ignored),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PHASES: [Phase; 5] = [
        Phase::NotFound,
        Phase::Working,
        Phase::Failed,
        Phase::Success,
        Phase::Revoking,
    ];
    const OPS: [Op; 6] = [
        Op::Launch,
        Op::Finish(Outcome::Ok),
        Op::Finish(Outcome::Err),
        Op::BeginRevoke,
        Op::FinishRevoke(Outcome::Ok),
        Op::FinishRevoke(Outcome::Err),
    ];

    #[test]
    fn refused_or_ignored_operations_leave_the_phase_unchanged() {
        for phase in PHASES {
            for op in OPS {
                let (next, response) = step(phase, op);
                if response != Response::Accepted {
                    assert_eq!(next, phase, "{phase:?} {op:?}");
                }
            }
        }
    }

    #[test]
    fn only_a_completed_revoke_returns_to_not_found() {
        for phase in PHASES {
            for op in OPS {
                let (next, _) = step(phase, op);
                if next == Phase::NotFound && phase != Phase::NotFound {
                    assert_eq!(
                        (phase, op),
                        (Phase::Revoking, Op::FinishRevoke(Outcome::Ok))
                    );
                }
            }
        }
    }

    #[test]
    fn success_is_left_only_through_a_revoke() {
        for phase in [Phase::Success, Phase::Revoking] {
            for op in OPS {
                let (next, _) = step(phase, op);
                assert!(
                    matches!(next, Phase::Success | Phase::Revoking)
                        || op == Op::FinishRevoke(Outcome::Ok),
                    "{phase:?} {op:?} -> {next:?}"
                );
            }
        }
    }

    #[test]
    fn only_launch_leaves_not_found() {
        for op in OPS {
            let (next, _) = step(Phase::NotFound, op);
            assert_eq!(next == Phase::NotFound, op != Op::Launch, "{op:?}");
        }
    }

    #[test]
    fn launch_is_accepted_or_refused() {
        for phase in PHASES {
            let (_, response) = step(phase, Op::Launch);
            assert!(
                matches!(response, Response::Accepted | Response::LaunchRefused(_)),
                "{phase:?}"
            );
        }
    }

    #[test]
    fn begin_revoke_is_accepted_or_refused() {
        for phase in PHASES {
            let (_, response) = step(phase, Op::BeginRevoke);
            assert!(
                matches!(response, Response::Accepted | Response::RevokeRefused(_)),
                "{phase:?}"
            );
        }
    }

    #[test]
    fn quick_state_reports_working_for_unknown_ids() {
        assert_eq!(Phase::NotFound.quick_state(), TaskState::Working);
        assert_eq!(Phase::Revoking.quick_state(), TaskState::Success);
        assert_eq!(Phase::Failed.quick_state(), TaskState::Failed);
    }
}
