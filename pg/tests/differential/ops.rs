//! The operations of a differential sequence, what each answers, and the
//! generator of sequences.

use async_tasks_recorder_pg::{
    Epoch, Fence, Finish, LaunchRefusal, Outcome, Phase, RevokeRefusal, Stored, TaskState,
};
use proptest::prelude::*;
use proptest::sample::select;
use std::fmt;

/// The ids of every sequence. Non-negative only: the simulator orders ids
/// by their big-endian bytes, which is their numeric order only for those.
/// `256` and `i64::MAX` differ from `0` in other bytes than the last.
pub const IDS: [i64; 3] = [0, 256, i64::MAX];

/// The `after` of a page: each id, and ids between them that no row has.
const AFTERS: [i64; 5] = [0, 1, 256, 257, i64::MAX];

/// The sweep's limits, a negative one among them: both sides refuse it
/// (`a_negative_sweep_limit_is_refused_on_both`).
const SWEEP_LIMITS: [i64; 5] = [-1, 0, 1, 2, 1000];

const STATES: [TaskState; 4] = [
    TaskState::NotFound,
    TaskState::Working,
    TaskState::Failed,
    TaskState::Success,
];

/// One operation of a sequence, run alike on both sides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `claim(id)`; a granted attempt is held.
    Claim(i64),
    /// `revoke_begin(id)`; a granted attempt is held.
    RevokeBegin(i64),
    /// `Attempt::finish` of held attempt `pick` (modulo those held) with
    /// the outcome: a revoke's attempt ends its revoke.
    Finish(u8, Outcome),
    /// Drops held attempt `pick`: its drop guard finishes it `Err` in the
    /// background, and the step waits until the row no longer shows it.
    Drop(u8),
    /// `query(id)`.
    Query(i64),
    /// `read(id)`.
    Read(i64),
    /// `wait(id)`, unless the id reads `Working` under a live lease (then
    /// only a finish would end it: answered `WouldWait`, nothing called).
    Wait(i64),
    /// `list_page(state, after, limit)`.
    Page(TaskState, Option<i64>, usize),
    /// `list(state)`.
    List(TaskState),
    /// `count(state)`.
    Count(TaskState),
    /// `sweep(limit)`.
    Sweep(i64),
    /// `resolve_finish` of granted lease `pick` (modulo every lease granted
    /// so far, settled or not) for a finish with the outcome: what the row
    /// proves of it.
    Resolve(u8, Outcome),
    /// The clock moves on by this many ticks (`side.rs`).
    Tick(u32),
}

/// Why a call failed, by kind: the kind is compared, the message shown.
#[derive(Clone, Debug)]
pub struct Failure {
    pub kind: String,
    pub message: String,
}

impl PartialEq for Failure {
    fn eq(&self, other: &Failure) -> bool {
        self.kind == other.kind
    }
}

impl Eq for Failure {}

/// What one side answered to one operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    Granted {
        fence: Fence,
        epoch: Epoch,
    },
    Refused(LaunchRefusal),
    RevokeRefused(RevokeRefusal),
    Finished {
        revoke: bool,
        fence: Fence,
        finish: Finish,
    },
    Dropped {
        id: i64,
        fence: Fence,
    },
    /// A finish, drop or resolve with no attempt or lease to take.
    NoneHeld,
    State(TaskState),
    Read(Stored),
    WouldWait,
    Ids(Vec<i64>),
    Page {
        ids: Vec<i64>,
        next: Option<i64>,
    },
    Count(u64),
    /// The swept ids with their new state, by id (PostgreSQL's `RETURNING`
    /// has no order).
    Swept(Vec<(i64, TaskState)>),
    Resolved {
        fence: Fence,
        finish: Option<Finish>,
    },
    Ticked(u32),
    Failed(Failure),
}

impl fmt::Display for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Answer::Failed(failure) => write!(f, "Failed({})", failure.message),
            other => write!(f, "{other:?}"),
        }
    }
}

/// The kind of `e`: the variant, and a database error's SQLSTATE (the
/// simulator's errors carry the SQLSTATE the real server would send).
pub fn failure(e: async_tasks_recorder_pg::Error) -> Answer {
    use async_tasks_recorder_pg::Error;
    let kind = match &e {
        Error::Db(db) => match db.as_db_error() {
            Some(db) => format!("database error {}", db.code().code()),
            None => "connection lost".to_owned(),
        },
        Error::Simulated { code, fatal: false } => format!("database error {code}"),
        Error::Simulated { fatal: true, .. } => "connection lost".to_owned(),
        Error::InDoubt { write, .. } => format!("in doubt: {write}"),
        Error::Timeout { bound, .. } => format!("timeout: {bound:?}"),
        Error::Pool(_) => "no connection".to_owned(),
        Error::Contended => "contended".to_owned(),
        other => format!("{other}"),
    };
    Answer::Failed(Failure {
        kind,
        message: e.to_string(),
    })
}

/// The figure an answer counts under, `before` being the read of the
/// operation's id just before it (for takeovers and zombies).
pub fn label(op: &Op, answer: &Answer, before: Option<&Stored>) -> String {
    let lapsed = |phase| before.is_some_and(|s| s.phase == phase && s.lapsed);
    match (op, answer) {
        (_, Answer::Failed(failure)) => format!("{}: error {}", name(op), failure.kind),
        (Op::Claim(_), Answer::Granted { .. }) if lapsed(Phase::Working) => {
            "claim: granted over a lapsed lease (takeover)".into()
        }
        (Op::RevokeBegin(_), Answer::Granted { .. }) if lapsed(Phase::Revoking) => {
            "revoke begin: granted over a lapsed revoke (takeover)".into()
        }
        (_, Answer::Granted { .. }) => format!("{}: granted", name(op)),
        (_, Answer::Refused(why)) => format!("claim: refused {why:?}"),
        (_, Answer::RevokeRefused(why)) => format!("revoke begin: refused {why:?}"),
        (_, Answer::Finished { revoke, finish, .. }) => {
            let what = if *revoke { "revoke end" } else { "finish" };
            match finish {
                Finish::Applied => format!("{what}: Applied"),
                Finish::Stale => format!("{what}: Stale (a zombie's)"),
            }
        }
        (_, Answer::Dropped { fence, .. }) => {
            let held = before.is_some_and(|s| {
                s.fence == *fence && matches!(s.phase, Phase::Working | Phase::Revoking)
            });
            match held {
                true => "drop: the guard finished it Err".into(),
                false => "drop: a zombie's (nothing to finish)".into(),
            }
        }
        (_, Answer::NoneHeld) => format!("{}: nothing held", name(op)),
        (_, Answer::State(state)) => format!("{}: {state:?}", name(op)),
        (_, Answer::Read(stored)) => match stored.lapsed {
            true => format!("read: {:?}, lapsed", stored.phase),
            false => format!("read: {:?}", stored.phase),
        },
        (_, Answer::WouldWait) => "wait: Working under a live lease (not called)".into(),
        (_, Answer::Ids(ids)) => format!("list: {} ids", ids.len()),
        (_, Answer::Page { ids, next }) => {
            let more = if next.is_some() { ", more" } else { "" };
            format!("page: {} ids{more}", ids.len())
        }
        (_, Answer::Count(n)) => format!("count: {n}"),
        (_, Answer::Swept(ids)) => format!("sweep: {} expired", ids.len()),
        (_, Answer::Resolved { finish, .. }) => match finish {
            Some(finish) => format!("resolve: {finish:?}"),
            None => "resolve: not applied (still held)".into(),
        },
        (_, Answer::Ticked(_)) => "tick".into(),
    }
}

fn name(op: &Op) -> &'static str {
    match op {
        Op::Claim(_) => "claim",
        Op::RevokeBegin(_) => "revoke begin",
        Op::Finish(..) => "finish",
        Op::Drop(_) => "drop",
        Op::Query(_) => "query",
        Op::Read(_) => "read",
        Op::Wait(_) => "wait",
        Op::Page(..) => "page",
        Op::List(_) => "list",
        Op::Count(_) => "count",
        Op::Sweep(_) => "sweep",
        Op::Resolve(..) => "resolve",
        Op::Tick(_) => "tick",
    }
}

/// The id an operation is about, if one.
pub fn id_of(op: &Op) -> Option<i64> {
    match op {
        Op::Claim(id) | Op::RevokeBegin(id) | Op::Query(id) | Op::Read(id) | Op::Wait(id) => {
            Some(*id)
        }
        _ => None,
    }
}

/// How often each operation is drawn, out of [`WEIGHTS`]' sum; claims and
/// finishes most, so that ids reach every phase and revokes have
/// successes to revoke.
const WEIGHTS: [u32; 13] = [6, 3, 4, 1, 1, 1, 1, 1, 1, 1, 2, 1, 2];

/// One operation: a kind by [`WEIGHTS`] and its arguments.
fn op() -> impl Strategy<Value = Op> {
    let total: u32 = WEIGHTS.iter().sum();
    (
        0..total,
        select(IDS.to_vec()),
        select(STATES.to_vec()),
        prop_oneof![3 => Just(Outcome::Ok), 1 => Just(Outcome::Err)],
        0..4u8,
        proptest::option::of(select(AFTERS.to_vec())),
        0..4usize,
        select(SWEEP_LIMITS.to_vec()),
        1..=2u32,
    )
        .prop_map(
            |(mut draw, id, state, outcome, pick, after, limit, sweep, ticks)| {
                let kind = WEIGHTS
                    .iter()
                    .position(|weight| {
                        let here = draw < *weight;
                        draw = draw.saturating_sub(*weight);
                        here
                    })
                    .unwrap_or(0);
                match kind {
                    0 => Op::Claim(id),
                    1 => Op::RevokeBegin(id),
                    2 => Op::Finish(pick, outcome),
                    3 => Op::Drop(pick),
                    4 => Op::Query(id),
                    5 => Op::Read(id),
                    6 => Op::Wait(id),
                    7 => Op::Page(state, after, limit),
                    8 => Op::List(state),
                    9 => Op::Count(state),
                    10 => Op::Sweep(sweep),
                    11 => Op::Resolve(pick, outcome),
                    _ => Op::Tick(ticks),
                }
            },
        )
}

/// Sequences of 1 to `longest` operations.
pub fn sequences(longest: usize) -> impl Strategy<Value = Vec<Op>> {
    proptest::collection::vec(op(), 1..=longest)
}
