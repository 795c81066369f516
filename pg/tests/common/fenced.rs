//! `spec::fenced_step` as the model of one id for the harness's
//! linearizability checker: the operations a client of the PostgreSQL
//! backend sees, and the record each may leave. Shared by the tests on a
//! real cluster (`model.rs`) and the simulation (`simulation.rs`).

use async_tasks_recorder::spec::{
    FencedOp, FencedResponse, Outcome, Record, Response, RevokeRefusal, TaskState, fenced_step,
};
use async_tasks_recorder_harness::linearizability::{self, Model};
use async_tasks_recorder_pg::Finish;
use std::fmt;
use std::time::Duration;

/// An operation on one id as a client saw it: what was asked and answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Launch(Result<(u64, u64), TaskState>),
    Finish(u64, Outcome, Finish),
    RevokeBegin(Result<u64, RevokeRefusal>),
    RevokeEnd(u64, Outcome, Finish),
    Query(TaskState),
    /// The sweep's verdict on this id: expired or not.
    Sweep(bool),
}

/// The record as a replica sees it: every lease lapsed if its clock is shifted.
pub fn view(record: Record, shifted: bool) -> Record {
    if shifted {
        fenced_step(record, FencedOp::Lapse).0
    } else {
        record
    }
}

/// Applies `event`, seen by a replica (`shifted` or not), to `record`: the
/// next record, or why the event cannot happen there.
pub fn apply(record: Record, shifted: bool, event: &Event) -> Result<Record, String> {
    let seen = view(record, shifted);
    let fresh = seen.fence + 1;
    let (op, expected): (FencedOp, &dyn Fn(FencedResponse, Record) -> bool) = match event {
        Event::Launch(Ok((fence, epoch))) => (FencedOp::Launch { fence: *fence }, &move |r, n| {
            r == FencedResponse::Step(Response::Accepted) && n.epoch == *epoch
        }),
        Event::Launch(Err(state)) => (FencedOp::Launch { fence: fresh }, &move |r, _| {
            r == FencedResponse::Step(Response::LaunchRefused(*state))
        }),
        Event::Finish(fence, outcome, finish) => (
            FencedOp::Finish {
                fence: *fence,
                outcome: *outcome,
            },
            &move |r, _| {
                matches!(
                    (r, finish),
                    (FencedResponse::Step(Response::Accepted), Finish::Applied)
                        | (FencedResponse::Stale, Finish::Stale)
                )
            },
        ),
        Event::RevokeBegin(Ok(fence)) => (FencedOp::BeginRevoke { fence: *fence }, &|r, _| {
            r == FencedResponse::Step(Response::Accepted)
        }),
        Event::RevokeBegin(Err(refused)) => {
            let want = *refused;
            (FencedOp::BeginRevoke { fence: fresh }, &move |r, _| {
                r == FencedResponse::Step(Response::RevokeRefused(want))
            })
        }
        Event::RevokeEnd(fence, outcome, finish) => (
            FencedOp::FinishRevoke {
                fence: *fence,
                outcome: *outcome,
            },
            &move |r, _| {
                matches!(
                    (r, finish),
                    (FencedResponse::Step(Response::Accepted), Finish::Applied)
                        | (FencedResponse::Stale, Finish::Stale)
                )
            },
        ),
        Event::Query(state) => {
            return if seen.phase.state() == *state {
                Ok(record)
            } else {
                Err(format!("query read {state:?} but the record is {record:?}"))
            };
        }
        Event::Sweep(expired) => (FencedOp::Expire, &move |r, _| {
            (r == FencedResponse::Expired) == *expired
        }),
    };
    let (next, response) = fenced_step(seen, op);
    if !expected(response, next) {
        return Err(format!(
            "{event:?} (shifted {shifted}) on {record:?}: the spec answers {response:?}"
        ));
    }
    // A lapse that the operation did not consume was only this replica's view.
    Ok(if next.lapsed && !record.lapsed {
        Record {
            lapsed: false,
            ..next
        }
    } else {
        next
    })
}

/// One operation on one id as a replica saw it: `shifted` when the replica
/// whose clock is past every lease ran it.
#[derive(Clone, PartialEq, Eq)]
pub struct Seen {
    pub shifted: bool,
    pub event: Event,
}

impl fmt::Debug for Seen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.shifted {
            write!(f, "later replica: ")?;
        }
        write!(f, "{:?}", self.event)
    }
}

/// One completed operation in a concurrent history, stamped with the time
/// since its history began.
pub type Timed<S = Duration> = linearizability::Event<Seen, S>;

/// `spec::fenced_step` as a linearizability model: one [`Record`] per id,
/// as the replicas' views of it (see [`apply`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct FencedSpec {
    /// A sweep nobody recorded may expire a lapsed record before any
    /// operation (a background sweeper's).
    pub hidden_sweeps: bool,
}

impl Model for FencedSpec {
    type State = Record;
    type Operation = Seen;

    fn initial(&self) -> Record {
        Record::NEW
    }

    fn apply(&self, record: Record, seen: &Seen) -> impl IntoIterator<Item = Record> {
        // Leases may lapse at any moment: try the record lapsed too.
        let lapsed = fenced_step(record, FencedOp::Lapse).0;
        let swept = fenced_step(lapsed, FencedOp::Expire).0;
        let bases = [
            Some(record),
            (lapsed != record).then_some(lapsed),
            (self.hidden_sweeps && swept != lapsed).then_some(swept),
        ];
        bases
            .into_iter()
            .flatten()
            .filter_map(|base| apply(base, seen.shifted, &seen.event).ok())
    }
}

/// Is there an order of `ops`, consistent with their real-time order, in
/// which each is allowed by the spec? The error shows the history and the
/// longest order found.
pub fn linearizable<S: Ord + Copy + fmt::Debug>(
    spec: &FencedSpec,
    ops: &[Timed<S>],
) -> Result<(), String> {
    linearizability::check(spec, ops)
        .map(drop)
        .map_err(|violation| format!("not linearizable:\n{violation}"))
}
