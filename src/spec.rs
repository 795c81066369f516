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
//!
//! # Leases and fences
//! A backend shared by several processes (the PostgreSQL one) cannot rely on
//! a drop guard: a holder may stall past its lease and wake up later. It
//! follows [`fenced_step`], a layer over [`step`] on a [`Record`] that
//! carries a [`Fence`] per accepted attempt and the revoke [`Epoch`]. The
//! layer answers `Stale` to a finish whose token is not current, and adds
//! `Expire` (a lapsed `Working` becomes `Failed`, a lapsed `Revoking` becomes
//! `Success`); every phase change still goes through [`step`]. The in-memory
//! recorder calls [`step`] directly: its attempts are owned by a guard in one
//! process, so it needs no tokens and keeps its costs.

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

/// A fencing token: issued afresh by every accepted [`FencedOp::Launch`] and
/// [`FencedOp::BeginRevoke`], strictly greater than every token the id had
/// before, across revokes and forgotten rows (a backend draws it from one
/// global counter, never from a per-row `+1`, which would restart if the
/// row were deleted).
pub type Fence = u64;

/// The revoke epoch of an id: incremented by every completed revoke, so
/// `(id, epoch)` names the one success an epoch may have.
pub type Epoch = u64;

/// One id's full record when attempts hold leases: the [`Phase`] plus what
/// fencing needs.
///
/// The phase still moves only through [`step`]; [`fenced_step`] only checks
/// fences and leases and then delegates, so a leased backend and the
/// in-memory recorder follow the same transition function.
#[derive(Clone, Copy, Debug, Eq, PartialEq, Hash)]
pub struct Record {
    /// The phase, moved only by [`step`].
    pub phase: Phase,
    /// Completed revokes so far.
    pub epoch: Epoch,
    /// The token of the latest accepted launch or revoke (0: none yet). A
    /// `Success` keeps the fence of the attempt that succeeded.
    pub fence: Fence,
    /// The lease of the running attempt or revoke has run out (the holder
    /// neither finished nor renewed in time). Only a `Working` or
    /// `Revoking` record is ever lapsed.
    pub lapsed: bool,
}

impl Record {
    /// A never-launched id.
    pub const NEW: Record = Record {
        phase: Phase::NotFound,
        epoch: 0,
        fence: 0,
        lapsed: false,
    };
}

/// An operation on a leased [`Record`].
#[derive(Clone, Copy, Debug, Eq, PartialEq, Hash)]
pub enum FencedOp {
    /// Start an attempt; if accepted, it holds `fence`, which must exceed
    /// the record's. A lapsed `Working` is taken over: expired, then
    /// launched. A lapsed `Revoking` is not touched (it refuses with `Success`).
    Launch {
        /// The token the new attempt would hold.
        fence: Fence,
    },
    /// The attempt holding `fence` ended.
    Finish {
        /// The finisher's token.
        fence: Fence,
        /// How its task ended.
        outcome: Outcome,
    },
    /// Start a revoke of a succeeded id; if accepted, it holds `fence`. A
    /// lapsed `Revoking` is taken over: expired, then begun again. A lapsed
    /// `Working` is not touched (it refuses with `NotSuccess`).
    BeginRevoke {
        /// The token the revoke would hold.
        fence: Fence,
    },
    /// The revoke holding `fence` ended.
    FinishRevoke {
        /// The revoker's token.
        fence: Fence,
        /// How the revoke future ended.
        outcome: Outcome,
    },
    /// The holder of `fence` extends its lease.
    Renew {
        /// The renewer's token.
        fence: Fence,
    },
    /// Time passes: the running lease runs out. Invisible to callers; a
    /// checker may place it anywhere, since safety must not depend on when
    /// leases lapse.
    Lapse,
    /// The sweep: a lapsed `Working` becomes `Failed` (as if its holder
    /// finished with `Err`), a lapsed `Revoking` becomes `Success` (as if the
    /// revoke failed).
    Expire,
}

/// What [`fenced_step`] answers.
#[derive(Clone, Copy, Debug, Eq, PartialEq, Hash)]
pub enum FencedResponse {
    /// The operation reached [`step`], which answered this. For an accepted
    /// launch or revoke the record now holds the new fence.
    Step(Response),
    /// The fence is not the record's current one, or the record is not in
    /// the phase that fence owned: nothing changed. A zombie's finish.
    Stale,
    /// A renewal by the current holder; the lease runs again.
    Renewed,
    /// The lease ran out (internal: no caller sees this answer).
    Lapsed,
    /// The sweep moved a lapsed record.
    Expired,
    /// The sweep found nothing lapsed: nothing changed.
    NotLapsed,
    /// A launch or revoke would have been accepted with a fence that does
    /// not exceed the record's: a backend bug (a reused token). Nothing changed.
    FenceNotFresh,
}

/// The transition function for leased records: checks the fence and the
/// lease, then delegates the phase change to [`step`].
///
/// Only the epoch is kept here: a completed revoke (`Revoking` to
/// `NotFound` through [`step`]) increments it.
pub const fn fenced_step(record: Record, op: FencedOp) -> (Record, FencedResponse) {
    use FencedOp as F;
    match op {
        F::Launch { fence } | F::BeginRevoke { fence } => {
            let (phase_op, takes_over) = match op {
                F::Launch { .. } => (Op::Launch, Phase::Working),
                _ => (Op::BeginRevoke, Phase::Revoking),
            };
            // A lapsed launch (for a launch) or revoke (for a revoke) is
            // taken over: Expire, then the op, which then is accepted. Any
            // other lapsed phase is left as it is.
            let start = match expire(record) {
                Some(expired) if record.phase as u8 == takes_over as u8 => expired,
                _ => record,
            };
            let (phase, response) = step(start.phase, phase_op);
            if !matches!(response, Response::Accepted) {
                return (record, FencedResponse::Step(response));
            }
            if fence <= record.fence {
                return (record, FencedResponse::FenceNotFresh);
            }
            let next = Record {
                phase,
                epoch: start.epoch,
                fence,
                lapsed: false,
            };
            (next, FencedResponse::Step(response))
        }
        F::Finish { fence, outcome } => {
            if !matches!(record.phase, Phase::Working) || fence != record.fence {
                return (record, FencedResponse::Stale);
            }
            let (phase, response) = step(record.phase, Op::Finish(outcome));
            let next = Record {
                phase,
                lapsed: false,
                ..record
            };
            (next, FencedResponse::Step(response))
        }
        F::FinishRevoke { fence, outcome } => {
            if !matches!(record.phase, Phase::Revoking) || fence != record.fence {
                return (record, FencedResponse::Stale);
            }
            let (phase, response) = step(record.phase, Op::FinishRevoke(outcome));
            let epoch = if matches!(phase, Phase::NotFound) {
                record.epoch + 1
            } else {
                record.epoch
            };
            let next = Record {
                phase,
                epoch,
                fence: record.fence,
                lapsed: false,
            };
            (next, FencedResponse::Step(response))
        }
        F::Renew { fence } => {
            if !matches!(record.phase, Phase::Working | Phase::Revoking) || fence != record.fence {
                return (record, FencedResponse::Stale);
            }
            let next = Record {
                lapsed: false,
                ..record
            };
            (next, FencedResponse::Renewed)
        }
        F::Lapse => {
            let lapsed = matches!(record.phase, Phase::Working | Phase::Revoking);
            let next = Record {
                lapsed: record.lapsed || lapsed,
                ..record
            };
            (next, FencedResponse::Lapsed)
        }
        F::Expire => match expire(record) {
            Some(next) => (next, FencedResponse::Expired),
            None => (record, FencedResponse::NotLapsed),
        },
    }
}

/// A lapsed record after the sweep, through [`step`]: the holder's finish
/// with `Err`, applied on its behalf. `None` if nothing is lapsed.
const fn expire(record: Record) -> Option<Record> {
    if !record.lapsed {
        return None;
    }
    let op = match record.phase {
        Phase::Working => Op::Finish(Outcome::Err),
        Phase::Revoking => Op::FinishRevoke(Outcome::Err),
        _ => return None,
    };
    let (phase, _) = step(record.phase, op);
    Some(Record {
        phase,
        lapsed: false,
        ..record
    })
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
    /// A fenced transition function under test: the real one or a mutant.
    type Stepper = fn(Record, FencedOp) -> (Record, FencedResponse);

    /// The operations a checker tries on `record`: fresh grants, and every
    /// finish, revoke end and renewal both by the current holder and by a
    /// zombie holding the previous token.
    fn fenced_ops(record: Record) -> Vec<FencedOp> {
        let fresh = record.fence + 1;
        let mut ops = vec![
            FencedOp::Launch { fence: fresh },
            FencedOp::BeginRevoke { fence: fresh },
            FencedOp::Lapse,
            FencedOp::Expire,
        ];
        let mut tokens = vec![record.fence];
        if record.fence > 0 {
            tokens.push(record.fence - 1);
        }
        for fence in tokens {
            for outcome in [Outcome::Ok, Outcome::Err] {
                ops.push(FencedOp::Finish { fence, outcome });
                ops.push(FencedOp::FinishRevoke { fence, outcome });
            }
            ops.push(FencedOp::Renew { fence });
        }
        ops
    }

    /// Explores every sequence of `depth` operations from a new record and
    /// returns the first violation of the lease rules:
    /// - a stale token changes nothing and is answered `Stale`;
    /// - a refused launch or revoke changes nothing, lapsed or not;
    /// - at most one `Finish(Ok)` is applied per epoch;
    /// - granted fences strictly increase;
    /// - only a lapsed lease expires, `Working` to `Failed`, `Revoking` to `Success`.
    fn check_lease_rules(stepper: Stepper, depth: usize) -> Result<usize, String> {
        use std::collections::HashSet;
        // (record, successes applied in the record's epoch)
        let mut frontier = vec![(Record::NEW, 0u32)];
        let mut seen = HashSet::new();
        let mut explored = 0;
        for _ in 0..depth {
            let mut next_frontier = Vec::new();
            for (record, successes) in frontier {
                for op in fenced_ops(record) {
                    explored += 1;
                    let (next, response) = stepper(record, op);
                    let token = match op {
                        FencedOp::Finish { fence, .. }
                        | FencedOp::FinishRevoke { fence, .. }
                        | FencedOp::Renew { fence } => Some(fence),
                        _ => None,
                    };
                    if token.is_some_and(|fence| fence != record.fence)
                        && (next != record || response != FencedResponse::Stale)
                    {
                        return Err(format!(
                            "stale token applied: {op:?} on {record:?} gave {next:?}, {response:?}"
                        ));
                    }
                    if matches!(
                        response,
                        FencedResponse::Step(
                            Response::LaunchRefused(_) | Response::RevokeRefused(_)
                        )
                    ) && next != record
                    {
                        return Err(format!(
                            "a refusal changed the record: {op:?} on {record:?}"
                        ));
                    }
                    if next.fence < record.fence {
                        return Err(format!("fence went backwards: {op:?} on {record:?}"));
                    }
                    if op == FencedOp::Expire && !record.lapsed && next != record {
                        return Err(format!("a live lease expired: {record:?} -> {next:?}"));
                    }
                    if op == FencedOp::Expire
                        && next != record
                        && !matches!(
                            (record.phase, next.phase),
                            (Phase::Working, Phase::Failed) | (Phase::Revoking, Phase::Success)
                        )
                    {
                        return Err(format!("bad expiry: {record:?} -> {next:?}"));
                    }
                    let mut successes = if next.epoch != record.epoch {
                        0
                    } else {
                        successes
                    };
                    if matches!(
                        op,
                        FencedOp::Finish {
                            outcome: Outcome::Ok,
                            ..
                        }
                    ) && next.phase == Phase::Success
                        && record.phase != Phase::Success
                    {
                        successes += 1;
                        if successes > 1 {
                            return Err(format!(
                                "two successes in epoch {}: {op:?} on {record:?}",
                                record.epoch
                            ));
                        }
                    }
                    if seen.insert((next, successes)) {
                        next_frontier.push((next, successes));
                    }
                }
            }
            frontier = next_frontier;
        }
        Ok(explored)
    }

    #[test]
    fn fenced_step_keeps_the_lease_rules() {
        let explored = check_lease_rules(fenced_step, 14).unwrap();
        assert!(explored > 1000, "explored only {explored} transitions");
    }

    /// Bite: a finish that ignores its token lets a zombie end the
    /// attempt that took over its lapsed lease.
    #[test]
    fn the_lease_check_catches_an_unfenced_finish() {
        fn unfenced(record: Record, op: FencedOp) -> (Record, FencedResponse) {
            match op {
                FencedOp::Finish { outcome, .. } => fenced_step(
                    record,
                    FencedOp::Finish {
                        fence: record.fence,
                        outcome,
                    },
                ),
                _ => fenced_step(record, op),
            }
        }
        let error = check_lease_rules(unfenced, 8).unwrap_err();
        assert!(error.starts_with("stale token applied"), "{error}");
    }

    /// Bite: a sweep that expires leases that have not run out.
    #[test]
    fn the_lease_check_catches_expiry_of_a_live_lease() {
        fn eager(record: Record, op: FencedOp) -> (Record, FencedResponse) {
            match op {
                FencedOp::Expire => fenced_step(
                    Record {
                        lapsed: true,
                        ..record
                    },
                    op,
                ),
                _ => fenced_step(record, op),
            }
        }
        let error = check_lease_rules(eager, 8).unwrap_err();
        assert!(error.starts_with("a live lease expired"), "{error}");
    }

    /// Only a `Working` or `Revoking` record is ever lapsed (the doc of
    /// `Record::lapsed`): every transition out of those phases clears it.
    #[test]
    fn only_a_held_record_is_ever_lapsed() {
        for phase in PHASES {
            let lapsed = Record {
                phase,
                epoch: 0,
                fence: 5,
                lapsed: matches!(phase, Phase::Working | Phase::Revoking),
            };
            for op in [
                FencedOp::Finish {
                    fence: 5,
                    outcome: Outcome::Ok,
                },
                FencedOp::Finish {
                    fence: 5,
                    outcome: Outcome::Err,
                },
                FencedOp::FinishRevoke {
                    fence: 5,
                    outcome: Outcome::Ok,
                },
                FencedOp::FinishRevoke {
                    fence: 5,
                    outcome: Outcome::Err,
                },
                FencedOp::Launch { fence: 6 },
                FencedOp::BeginRevoke { fence: 6 },
                FencedOp::Expire,
                FencedOp::Lapse,
            ] {
                let (next, _) = fenced_step(lapsed, op);
                assert!(
                    !next.lapsed || matches!(next.phase, Phase::Working | Phase::Revoking),
                    "{phase:?} {op:?} -> {next:?}"
                );
            }
        }
    }

    /// The holder's renewal runs its lease again; anyone else's is stale.
    #[test]
    fn only_the_holder_renews() {
        for phase in [Phase::Working, Phase::Revoking] {
            let lapsed = Record {
                phase,
                epoch: 0,
                fence: 5,
                lapsed: true,
            };
            let (renewed, response) = fenced_step(lapsed, FencedOp::Renew { fence: 5 });
            assert_eq!(response, FencedResponse::Renewed, "{phase:?}");
            assert_eq!(
                renewed,
                Record {
                    lapsed: false,
                    ..lapsed
                },
                "{phase:?}"
            );
            let (after, response) = fenced_step(lapsed, FencedOp::Renew { fence: 4 });
            assert_eq!(
                (after, response),
                (lapsed, FencedResponse::Stale),
                "{phase:?}"
            );
        }
        for phase in [Phase::NotFound, Phase::Failed, Phase::Success] {
            let record = Record {
                phase,
                epoch: 0,
                fence: 5,
                lapsed: false,
            };
            let (_, response) = fenced_step(record, FencedOp::Renew { fence: 5 });
            assert_eq!(response, FencedResponse::Stale, "{phase:?}");
        }
    }

    /// Bite: fences counted per row restart when a backend forgets a row.
    #[test]
    fn fenced_step_refuses_a_reused_fence() {
        let (working, _) = fenced_step(Record::NEW, FencedOp::Launch { fence: 7 });
        let (failed, _) = fenced_step(
            working,
            FencedOp::Finish {
                fence: 7,
                outcome: Outcome::Err,
            },
        );
        let (after, response) = fenced_step(failed, FencedOp::Launch { fence: 7 });
        assert_eq!(response, FencedResponse::FenceNotFresh);
        assert_eq!(after, failed);
    }

    /// With the holder's own token and no lapse, the fenced layer is
    /// exactly `step`: same phase, same answer.
    #[test]
    fn fenced_step_delegates_to_step() {
        for phase in PHASES {
            let record = Record {
                phase,
                epoch: 3,
                fence: 5,
                lapsed: false,
            };
            for op in OPS {
                let fenced = match op {
                    Op::Launch => FencedOp::Launch { fence: 6 },
                    Op::BeginRevoke => FencedOp::BeginRevoke { fence: 6 },
                    Op::Finish(outcome) => FencedOp::Finish { fence: 5, outcome },
                    Op::FinishRevoke(outcome) => FencedOp::FinishRevoke { fence: 5, outcome },
                };
                let (next, response) = fenced_step(record, fenced);
                let (phase_next, phase_response) = step(phase, op);
                assert_eq!(next.phase, phase_next, "{phase:?} {op:?}");
                match response {
                    FencedResponse::Step(r) => assert_eq!(r, phase_response, "{phase:?} {op:?}"),
                    FencedResponse::Stale => {
                        assert_eq!(phase_response, Response::Ignored, "{phase:?} {op:?}")
                    }
                    other => panic!("{phase:?} {op:?}: {other:?}"),
                }
            }
        }
    }

    #[test]
    fn a_lapsed_attempt_is_taken_over_and_its_holder_is_stale() {
        let (working, _) = fenced_step(Record::NEW, FencedOp::Launch { fence: 1 });
        let (lapsed, _) = fenced_step(working, FencedOp::Lapse);
        let (taken, response) = fenced_step(lapsed, FencedOp::Launch { fence: 2 });
        assert_eq!(response, FencedResponse::Step(Response::Accepted));
        assert_eq!((taken.phase, taken.fence), (Phase::Working, 2));
        let zombie = FencedOp::Finish {
            fence: 1,
            outcome: Outcome::Ok,
        };
        assert_eq!(fenced_step(taken, zombie), (taken, FencedResponse::Stale));
        // A live attempt is not taken over.
        let (same, response) = fenced_step(working, FencedOp::Launch { fence: 2 });
        assert_eq!(same, working);
        assert_eq!(
            response,
            FencedResponse::Step(Response::LaunchRefused(TaskState::Working))
        );
    }

    #[test]
    fn expiry_fails_work_and_keeps_a_revoked_success() {
        let working = Record {
            phase: Phase::Working,
            epoch: 0,
            fence: 1,
            lapsed: true,
        };
        assert_eq!(
            fenced_step(working, FencedOp::Expire).0.phase,
            Phase::Failed
        );
        let revoking = Record {
            phase: Phase::Revoking,
            ..working
        };
        assert_eq!(
            fenced_step(revoking, FencedOp::Expire).0.phase,
            Phase::Success
        );
        let (done, _) = fenced_step(
            Record {
                lapsed: false,
                ..revoking
            },
            FencedOp::FinishRevoke {
                fence: 1,
                outcome: Outcome::Ok,
            },
        );
        assert_eq!((done.phase, done.epoch), (Phase::NotFound, 1));
    }
}
