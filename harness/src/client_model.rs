//! The PostgreSQL backend's client protocol, as a [`Model`] for
//! [`explore::check`](crate::explore::check): two replicas (clients `0` and
//! `1`) on one id, a sweeper, the database row, the fence sequence, leases
//! that lapse at any step, and writes whose replies are lost.
//!
//! # What is modelled
//! - **The row** is a [`Record`] plus the `success_fence` column. Every
//!   change of the record is computed by
//!   [`spec::fenced_step`](async_tasks_recorder::spec::fenced_step); the
//!   `success_fence` is set as `pg/src/sql.rs`'s finish sets it, to the
//!   *row's* fence when a finish with `Ok` matches. The row is absent until
//!   the first claim (fence 0), and never deleted.
//! - **The fence sequence** (`drawn`): a grant that applies draws the next
//!   value; a guard that admits no row draws none.
//! - **A grant** (`pg/src/grant.rs`), for a launch and a revoke alike: one
//!   read of the row, which refuses where `fenced_step` would refuse (the
//!   read's refusals are the spec's: `grant.rs` tests), or sends the guarded
//!   write: `claim_new` for a row the read found absent (it matches nothing
//!   once a row exists), `claim` or `revoke_begin` otherwise, its guard
//!   judged on the row as it is when the write applies. A write whose guard
//!   admits nothing (`Moved`) sends the client back to read the row again.
//!   A grant whose reply is lost is an error: the launch or revoke ends
//!   without an attempt, and the write may still apply, drawing a fence
//!   nobody holds.
//! - **An attempt** runs its task (or revoke body), may send renewals (each
//!   may apply at any later step, or never: a renewal's answer changes no
//!   decision of the client), then finishes `Ok` or `Err` with the real
//!   finish loop (`pg/src/attempt.rs`, `finish_here`): at most
//!   [`MAX_SENDS`] sends; a send in doubt makes every later round read the
//!   row first ([`resolve`](ClientModel::resolve): the fence proves
//!   identity; `Working` under my fence is unapplied and is sent again; an
//!   epoch moved on is unprovable, answered `InDoubt`, and so is an `Err`
//!   end whose row moved on); a send that matches nothing is `Stale` if
//!   nothing earlier is in doubt, and is answered by the row if something
//!   is; after the fifth send in doubt the row is read once more, and what
//!   it cannot prove is answered `InDoubt`.
//! - **In-doubt replies.** Any write a client waits for (claim, revoke
//!   begin, finish, revoke end) either applies and is answered
//!   ([`Action::Deliver`]), or its reply never comes ([`Action::Timeout`],
//!   [`Action::FinishInDoubt`]: a fault): the write then lingers, and may
//!   apply at any later step ([`Action::Apply`]: with its reply lost, or
//!   late, after the client read the row or sent again) or never (a write
//!   lost before applying is one that lingers for ever). Renewals always
//!   linger. A lingering write that can never match again (a fenced write
//!   whose fence the row has left) is forgotten, which merges states
//!   without removing a behaviour.
//! - **Time** is the lease's lapse ([`Action::Lapse`]): the row's running
//!   lease runs out at any step. **The sweeper** ([`Action::Sweep`]) expires
//!   a lapsed row (`Working` to `Failed`, `Revoking` to `Success`).
//! - **The lost flag** (`Lease::is_lost`). The renewal loop marks a lease
//!   lost one lease period after the *send* of the latest grant or renewal
//!   the database acknowledged. The database set that lease at some moment
//!   after the send, to its own clock plus the same period, so (with the
//!   two clocks running at the same rate and the renewal task running on
//!   time) the holder is marked lost no later than the row lapses. The
//!   model takes exactly that as given: a [`Action::Lapse`] of the row
//!   marks the attempt holding its fence lost in the same step. It does
//!   not model the earlier marks the real code also makes (a renewal
//!   refused, or hung): nothing in the protocol reads the flag, and an
//!   earlier mark only makes its property easier to keep. What is then
//!   checked is that nothing moves the row away from a holder *without* a
//!   lapse ([`LOST_BEFORE_TAKEN`]).
//!
//! A fenced side effect (a write of the task's in the finish's
//! transaction, keyed by the lease's `(id, epoch)`) commits with every
//! finish that applies with `Ok`.
//!
//! # Transitions
//! Of a client `c` ([`Action`]):
//! - `Launch(c)`, `Revoke(c)`: spends one launch (revoke) of its budget and
//!   reads the row: refuses, or sends the grant's write;
//! - `Read(c)`: reads the row again after its grant's write moved;
//! - `Deliver(c)`: the write it waits for (a grant, or a resend of its
//!   finish) applies, and it hears what it did;
//! - `Timeout(c)`: it never hears of that write (a fault);
//! - `Renew(c)`: sends a renewal;
//! - `Finish(c, outcome)`: its task (or revoke body) ends; the finish's
//!   first send applies and is answered (`Applied`, or `Stale`: nothing is
//!   in doubt yet); `FinishInDoubt(c, outcome)`: the same, but the first
//!   send's reply never comes (a fault). Nothing is decided between a
//!   task's end and its first send's apply, so the two are one step;
//! - `Resolve(c)`: reads the row in the finish loop, before a resend (and
//!   sends it, or answers) or after a resend that matched nothing (and
//!   answers).
//!
//! Of the system: `Apply(write)` applies a lingering write, `Lapse` lets
//! the row's running lease lapse (marking its holder lost), `Sweep`
//! expires a lapsed row.
//!
//! # Not modelled
//! - Definite errors: a statement the server refused with an `ERROR`, or
//!   one never sent (no connection). Each leaves the row as it was and is
//!   no answer the properties judge (a finish's definite error ends the
//!   loop with that error, an unsent round is another round).
//! - A read that fails: every read is answered (reads are retried on a
//!   broken connection in the real code); a resolve that fails, which the
//!   real loop treats as "send again", is therefore not covered.
//! - `Db::confirm`, replication and promotion: one server, whose commits
//!   are durable (`harness/src/failover.rs` models promotion).
//! - The finish inside the caller's transaction (`finish_in`), its row
//!   lock, the lock bound's refusal of a grant, `abandon`, and
//!   `resolve_commit`. The drop guard's single `Err` send is no transition
//!   of its own: its row effect is a `Finish(c, Err)`'s first send, but
//!   the model's client then runs the loop instead of walking away.
//! - A grant's give-up after 64 tries or its statement bound
//!   (`Error::Contended`): the model's client reads again as often as the
//!   row moves under it (which the budgets bound).
//! - The `claim_new` insert drawing a fence that it then does not use (the
//!   sequence advances on a conflict): gaps in fences change no guard.
//! - Clock drift, and a renewal task that runs late (the assumption of
//!   the lost flag, above): in the real code the flag is set by a timer
//!   task, so a task that starts after a grant whose reply came later than
//!   one lease can read `is_lost() == false` until that task first runs.
//! - More than one id, more than two clients, and budgets beyond the
//!   [`Scope`].
//!
//! # Properties
//! [`ONE_SUCCESS_PER_EPOCH`], [`ANSWERS_AGREE`], [`FENCES_INCREASE`],
//! [`ONE_EFFECT_PER_EPOCH`], [`STALE_FENCE_CHANGES_NOTHING`],
//! [`LOST_BEFORE_TAKEN`], and [`IN_DOUBT_ONLY_WHEN_UNPROVABLE`], each
//! checked in every state; [`EXACT_ERR_ANSWERS`] only when asked for
//! ([`ClientModel::exact_err_answers`]), since the real code does not
//! promise it (its counterexample is in `harness/tests/client_model.rs`).
//!
//! [`Design`] picks the protocol: the crate's ([`Design::CHOSEN`]) and one
//! known-bad variant per choice, each with its counterexample in
//! `harness/tests/client_model.rs`.

use crate::explore::{Model, Property};
use async_tasks_recorder::spec::{
    Epoch, Fence, FencedOp, FencedResponse, Outcome, Phase, Record, Response, fenced_step,
};
use std::fmt;

/// The most sends of one finish (`finish_here`'s five rounds).
pub const MAX_SENDS: u8 = 5;

/// What an attempt holds: a launch's `Working` or a revoke's `Revoking`.
#[derive(Clone, Copy, Debug, Eq, PartialEq, Hash)]
pub enum Holding {
    /// A launch's claim.
    Work,
    /// A revoke's begin.
    Revoke,
}

impl Holding {
    /// The phase the row is in while this attempt holds it.
    fn phase(self) -> Phase {
        match self {
            Holding::Work => Phase::Working,
            Holding::Revoke => Phase::Revoking,
        }
    }
}

/// The guard of the finish statement (of a launch's attempt).
#[derive(Clone, Copy, Debug, Eq, PartialEq, Hash)]
pub enum FinishGuard {
    /// `fence = $2 AND state = Working`: only the current attempt matches.
    FenceAndState,
    /// `state = Working` only (`KnownBad::FinishWithoutFence`): a zombie's
    /// finish matches the row of the attempt that replaced it.
    StateOnly,
}

/// How a resend that matched nothing is answered while an earlier send is
/// in doubt.
#[derive(Clone, Copy, Debug, Eq, PartialEq, Hash)]
pub enum ResentMiss {
    /// By reading the row: the earlier send may have applied late.
    ReadTheRow,
    /// `Stale` at once, as if nothing earlier were in flight.
    AnswerStale,
}

/// What the resolution of a launch's finish with `Ok` makes of a row whose
/// epoch has moved past the attempt's (and whose `success_fence` is not
/// the attempt's).
#[derive(Clone, Copy, Debug, Eq, PartialEq, Hash)]
pub enum MovedEpoch {
    /// Nothing: the row can no longer tell, `InDoubt`.
    Unprovable,
    /// Proof of the success (only a success can be revoked): `Applied`.
    ProvesSuccess,
}

/// What the claim's write judges its guard on.
#[derive(Clone, Copy, Debug, Eq, PartialEq, Hash)]
pub enum ClaimWrite {
    /// The row as it is when the write applies (the guard is inside the
    /// statement).
    Guarded,
    /// The state the read before it saw (`KnownBad::ClaimTrustsItsRead`,
    /// an unguarded `UPDATE`): a read made stale grants the id again.
    TrustsRead,
}

/// The protocol a run of the model checks.
#[derive(Clone, Copy, Debug, Eq, PartialEq, Hash)]
pub struct Design {
    /// The finish's guard.
    pub finish_guard: FinishGuard,
    /// A resend that matched nothing.
    pub resent_miss: ResentMiss,
    /// An epoch moved on, in a resolution.
    pub moved_epoch: MovedEpoch,
    /// The claim's guard.
    pub claim_write: ClaimWrite,
}

impl Design {
    /// The crate's protocol.
    pub const CHOSEN: Design = Design {
        finish_guard: FinishGuard::FenceAndState,
        resent_miss: ResentMiss::ReadTheRow,
        moved_epoch: MovedEpoch::Unprovable,
        claim_write: ClaimWrite::Guarded,
    };
}

/// The budgets that bound a search.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub struct Scope {
    /// Launches each client may start.
    pub launches: [u8; 2],
    /// Revokes each client may start.
    pub revokes: [u8; 2],
    /// Replies lost in a run ([`Action::Timeout`],
    /// [`Action::FinishInDoubt`]).
    pub faults: u8,
    /// Lease lapses in a run.
    pub lapses: u8,
    /// Sweeps that expire a row, in a run.
    pub sweeps: u8,
    /// Renewals sent, in a run.
    pub renewals: u8,
}

impl Default for Scope {
    /// The scope `cargo test` checks: one launch and one revoke per client,
    /// two lost replies, two lapses, one sweep, one renewal.
    fn default() -> Self {
        Scope {
            launches: [1, 1],
            revokes: [1, 1],
            faults: 2,
            lapses: 2,
            sweeps: 1,
            renewals: 1,
        }
    }
}

/// The model: a design at a scope.
pub struct ClientModel {
    /// The protocol checked.
    pub design: Design,
    /// How far the search goes.
    pub scope: Scope,
    /// Also check [`EXACT_ERR_ANSWERS`], which the real code does not
    /// promise.
    pub exact_err_answers: bool,
}

impl ClientModel {
    /// `design` at `scope`, checking the promised properties.
    pub fn new(design: Design, scope: Scope) -> ClientModel {
        ClientModel {
            design,
            scope,
            exact_err_answers: false,
        }
    }
}

/// The row: the spec's record and the `success_fence` column.
#[derive(Clone, Copy, Eq, PartialEq, Hash)]
pub struct Row {
    /// Moved only by `fenced_step`.
    pub record: Record,
    /// The fence of the row when its latest success was written.
    pub success_fence: Option<Fence>,
}

/// A granted attempt, as its lease knows it.
#[derive(Clone, Copy, Eq, PartialEq, Hash)]
pub struct Attempt {
    /// What it holds.
    pub holding: Holding,
    /// Its fence.
    pub fence: Fence,
    /// The epoch the grant returned.
    pub epoch: Epoch,
}

/// A write statement.
#[derive(Clone, Copy, Eq, PartialEq, Hash)]
pub enum Write {
    /// A claim; `absent`: the read found no row (`claim_new`); `read`: the
    /// phase and lapse the read saw, kept only for [`ClaimWrite::TrustsRead`].
    Claim {
        /// The read found no row.
        absent: bool,
        /// What the read saw, if the write trusts it.
        read: Option<(Phase, bool)>,
    },
    /// A revoke begin.
    BeginRevoke,
    /// A renewal by the holder of `fence`.
    Renew {
        /// The renewer's fence.
        fence: Fence,
    },
    /// The finish (or revoke end) of `attempt` with `outcome`.
    Finish {
        /// The finisher.
        attempt: Attempt,
        /// How its task (or revoke body) ended.
        outcome: Outcome,
    },
}

impl Write {
    /// A total order, so that the lingering writes are kept sorted and a
    /// set of them is one state whatever order they were sent in.
    fn key(&self) -> (u8, u8, u8, u64, u64) {
        match *self {
            Write::Claim { absent, read } => {
                let (phase, lapsed) = read.map_or((0, 0), |(p, l)| (p as u8 + 1, l as u8));
                (0, absent as u8, phase, lapsed as u64, 0)
            }
            Write::BeginRevoke => (1, 0, 0, 0, 0),
            Write::Renew { fence } => (2, 0, 0, fence, 0),
            Write::Finish { attempt, outcome } => (
                3,
                attempt.holding as u8,
                (outcome == Outcome::Ok) as u8,
                attempt.fence,
                attempt.epoch,
            ),
        }
    }
}

/// Where a client is.
#[derive(Clone, Copy, Eq, PartialEq, Hash)]
pub enum Stage {
    /// Between calls.
    Idle,
    /// Its grant's write admitted no row: it reads the row again.
    Reading(Holding),
    /// Its grant's write is in flight and awaited.
    Granting {
        /// What it grants.
        holding: Holding,
        /// The write sent.
        write: Write,
    },
    /// Its attempt runs its task (or revoke body).
    Running {
        /// The attempt.
        attempt: Attempt,
        /// `Lease::is_lost`.
        lost: bool,
    },
    /// An earlier send of its finish is in doubt, and send `round` (1 to
    /// [`MAX_SENDS`] - 1) is in flight and awaited. (The first send is
    /// applied, or lost, in the step that sends it: nothing is decided
    /// between the task's end and its apply.)
    Awaiting {
        /// The attempt.
        attempt: Attempt,
        /// The finish's outcome.
        outcome: Outcome,
        /// The round.
        round: u8,
    },
    /// An earlier send is in doubt: it reads the row before send `round`.
    Resending {
        /// The attempt.
        attempt: Attempt,
        /// The finish's outcome.
        outcome: Outcome,
        /// The round of the next send.
        round: u8,
    },
    /// A resend matched nothing, or the last send is in doubt: it reads
    /// the row for the answer.
    Missed {
        /// The attempt.
        attempt: Attempt,
        /// The finish's outcome.
        outcome: Outcome,
    },
}

/// A client: where it is, and what it may still start.
#[derive(Clone, Copy, Eq, PartialEq, Hash)]
pub struct Client {
    /// Where it is.
    pub stage: Stage,
    /// Launches left.
    pub launches: u8,
    /// Revokes left.
    pub revokes: u8,
}

/// What a finish (or revoke end) was answered.
#[derive(Clone, Copy, Debug, Eq, PartialEq, Hash)]
pub enum Said {
    /// `Finish::Applied`.
    Applied,
    /// `Finish::Stale`.
    Stale,
    /// `Error::InDoubt`.
    InDoubt,
}

/// The answer a finish (or revoke end) was given.
#[derive(Clone, Copy, Eq, PartialEq, Hash)]
pub struct Answer {
    /// The finish's outcome.
    pub outcome: Outcome,
    /// What it was answered.
    pub said: Said,
    /// The row, when the answer was given, would have settled it (a
    /// resolution by the crate's rules would have returned a finished
    /// answer).
    pub provable: bool,
}

/// What became of one attempt (of one fence), as far as the properties
/// ask.
#[derive(Clone, Copy, Default, Eq, PartialEq, Hash)]
pub struct History {
    /// A finish (or revoke end) it sent matched the row.
    pub applied: bool,
    /// Its lease was expired on its holder's behalf (by the sweep, or by
    /// the grant that took the lapsed lease over).
    pub expired: bool,
    /// What its finish was answered, once it was.
    pub answer: Option<Answer>,
}

/// The most epochs a search may reach (one more than the revokes in its
/// scope).
pub const EPOCHS: usize = 4;

/// What the database applied, and what clients were told: only what the
/// properties judge, so that two runs that differ in nothing else are one
/// state.
#[derive(Clone, Default, Eq, PartialEq, Hash)]
pub struct Log {
    /// Per fence `f`, at `f - 1`: what became of its attempt. A grant that
    /// applies appends its fence's.
    pub attempts: Vec<History>,
    /// Finishes with `Ok` that applied, per epoch of the row then.
    pub successes: [u8; EPOCHS],
    /// Fenced side effects committed, per epoch of the lease they ran
    /// under.
    pub effects: [u8; EPOCHS],
    /// A finish or revoke end applied with a fence that was not the row's.
    pub stale_applied: bool,
    /// A grant drew a fence not above every fence granted before it.
    pub fence_reused: bool,
}

/// The budgets spent so far.
#[derive(Clone, Copy, Default, Eq, PartialEq, Hash)]
pub struct Spent {
    /// Replies lost.
    pub faults: u8,
    /// Lapses.
    pub lapses: u8,
    /// Sweeps that expired the row.
    pub sweeps: u8,
    /// Renewals sent.
    pub renewals: u8,
}

/// A whole state.
#[derive(Clone, Eq, PartialEq, Hash)]
pub struct State {
    /// The row.
    pub row: Row,
    /// The fence sequence's latest value.
    pub drawn: Fence,
    /// The two clients.
    pub clients: [Client; 2],
    /// Writes sent whose replies nobody waits for, which may still apply,
    /// sorted.
    pub lingering: Vec<Write>,
    /// The budgets spent.
    pub spent: Spent,
    /// The history the properties judge.
    pub log: Log,
}

/// An action of a client or of the system.
#[derive(Clone, Copy, Debug, Eq, PartialEq, Hash)]
pub enum Action {
    /// Client `0` starts a launch: reads the row, refuses or sends the claim.
    Launch(usize),
    /// Client `0` starts a revoke: reads the row, refuses or sends the begin.
    Revoke(usize),
    /// Client `0` reads the row again after its grant's write moved.
    Read(usize),
    /// The write client `0` waits for applies, and it hears the answer.
    Deliver(usize),
    /// Client `0` never hears from the write it waits for: in doubt.
    Timeout(usize),
    /// Client `0` sends a renewal of its lease.
    Renew(usize),
    /// Client `0`'s task ends with the outcome; its finish's first send
    /// applies (or matches nothing), and is answered.
    Finish(usize, Outcome),
    /// Client `0`'s task ends with the outcome; the reply to its finish's
    /// first send never comes (a fault), and the send lingers.
    FinishInDoubt(usize, Outcome),
    /// Client `0` reads the row in its finish loop.
    Resolve(usize),
    /// A lingering write applies.
    Apply(Write),
    /// The row's running lease lapses.
    Lapse,
    /// The sweeper expires the lapsed row.
    Sweep,
}

/// What a write did.
enum Effect {
    /// A grant applied: the attempt it made.
    Granted(Attempt),
    /// A grant's guard admitted no row.
    Moved,
    /// A finish matched the row (`true`) or not.
    Finished(bool),
    /// A renewal (its answer is not used).
    Renewed,
}

/// What the row proves of a finish in doubt (`attempt.rs`'s `Resolution`).
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum Resolution {
    /// The row proves the answer.
    Finished(Said),
    /// The row shows the attempt still holding the id: send again.
    Unapplied,
    /// The row cannot tell.
    Unprovable,
}

/// [`ClientModel`]'s property: at most one finish with `Ok` applies per
/// epoch of the row.
pub const ONE_SUCCESS_PER_EPOCH: &str = "at most one applied success per (id, epoch)";
/// [`ClientModel`]'s property: every answer agrees with the log. An `Ok`
/// finish or revoke end is answered `Applied` exactly when it applied and
/// `Stale` exactly when it did not (in every later state too); an `Err`
/// one is answered `Applied` only if its attempt ended by it or by the
/// expiry done on its behalf (the row then holds its fence in the state the
/// end leaves), and `Stale` only if it did not apply.
pub const ANSWERS_AGREE: &str = "every answer agrees with the log of applied statements";
/// [`ClientModel`]'s property: granted fences strictly increase, and the
/// row keeps the latest.
pub const FENCES_INCREASE: &str = "fences strictly increase";
/// [`ClientModel`]'s property: at most one fenced side effect commits per
/// `(id, epoch)` of the lease it ran under.
pub const ONE_EFFECT_PER_EPOCH: &str = "at most one fenced side effect per (id, epoch)";
/// [`ClientModel`]'s property: a finish or revoke end applies only with the
/// row's current fence.
pub const STALE_FENCE_CHANGES_NOTHING: &str = "a stale fence changes nothing";
/// [`ClientModel`]'s property: a running attempt not marked lost still
/// holds its row, unlapsed.
pub const LOST_BEFORE_TAKEN: &str = "an attempt is marked lost before its row is taken";
/// [`ClientModel`]'s property: `InDoubt` is answered only when the row,
/// then, could not prove the answer.
pub const IN_DOUBT_ONLY_WHEN_UNPROVABLE: &str = "InDoubt only when the row cannot prove the answer";
/// [`ClientModel`]'s optional property: an `Err` finish, too, is answered
/// `Applied` exactly when it applied and `Stale` exactly when it did not.
/// The real code does not promise it (`Finish::Stale`): a row that the
/// sweep failed under the attempt's fence reads as its own `Err` finish.
pub const EXACT_ERR_ANSWERS: &str = "an Err finish is answered exactly";

impl ClientModel {
    /// The resolution of `attempt`'s finish with `outcome` from `row`, by
    /// `attempt.rs`'s `resolve` (with this design's reading of a moved
    /// epoch).
    pub fn resolve(&self, row: Row, attempt: Attempt, outcome: Outcome) -> Resolution {
        resolve(row, attempt, outcome, self.design.moved_epoch)
    }

    /// Applies `write` to the row.
    fn apply(&self, state: &mut State, write: Write) -> Effect {
        let row = state.row.record;
        match write {
            Write::Claim { absent, read } => {
                if absent && row.fence != 0 {
                    // `INSERT … ON CONFLICT DO NOTHING`: a row appeared.
                    return Effect::Moved;
                }
                let judged = match (self.design.claim_write, read) {
                    (ClaimWrite::TrustsRead, Some((phase, lapsed))) => Record {
                        phase,
                        lapsed,
                        ..row
                    },
                    _ => row,
                };
                self.grant(state, judged, Holding::Work)
            }
            Write::BeginRevoke => self.grant(state, row, Holding::Revoke),
            Write::Renew { fence } => {
                let (next, response) = fenced_step(row, FencedOp::Renew { fence });
                if response == FencedResponse::Renewed {
                    state.row.record = next;
                }
                Effect::Renewed
            }
            Write::Finish { attempt, outcome } => {
                let fence = match (attempt.holding, self.design.finish_guard) {
                    (Holding::Work, FinishGuard::StateOnly) if row.phase == Phase::Working => {
                        row.fence
                    }
                    _ => attempt.fence,
                };
                let op = match attempt.holding {
                    Holding::Work => FencedOp::Finish { fence, outcome },
                    Holding::Revoke => FencedOp::FinishRevoke { fence, outcome },
                };
                let (next, response) = fenced_step(row, op);
                if response != FencedResponse::Step(Response::Accepted) {
                    return Effect::Finished(false);
                }
                let log = &mut state.log;
                if attempt.holding == Holding::Work && outcome == Outcome::Ok {
                    state.row.success_fence = Some(row.fence);
                    // The side effect commits with the finish, under the
                    // lease's epoch; the success is the row's epoch's.
                    log.successes[row.epoch as usize] += 1;
                    log.effects[attempt.epoch as usize] += 1;
                }
                log.attempts[attempt.fence as usize - 1].applied = true;
                log.stale_applied |= attempt.fence != row.fence;
                state.row.record = next;
                Effect::Finished(true)
            }
        }
    }

    /// The grant of `holding` judged on `judged` (the row, or what a
    /// trusting claim read), written over the row if accepted.
    fn grant(&self, state: &mut State, judged: Record, holding: Holding) -> Effect {
        let fence = state.drawn + 1;
        let op = match holding {
            Holding::Work => FencedOp::Launch { fence },
            Holding::Revoke => FencedOp::BeginRevoke { fence },
        };
        let (next, response) = fenced_step(judged, op);
        if response != FencedResponse::Step(Response::Accepted) {
            return Effect::Moved;
        }
        // A grant over a lapsed lease of its own kind takes it over: the
        // spec expires it first, on its holder's behalf. (A trusting claim
        // may instead overwrite a row that is no lease at all.)
        let row = state.row.record;
        if row.lapsed && row.phase == holding.phase() {
            state.log.attempts[row.fence as usize - 1].expired = true;
        }
        state.log.fence_reused |= fence <= state.drawn;
        state.drawn = fence;
        state.row.record = next;
        state.log.attempts.push(History::default());
        Effect::Granted(Attempt {
            holding,
            fence,
            epoch: next.epoch,
        })
    }

    /// Client `c` reads the row for a grant of `holding`: refuses, or sends
    /// the guarded write.
    fn read_for_grant(&self, state: &mut State, c: usize, holding: Holding) {
        let row = state.row.record;
        let fresh = state.drawn + 1;
        let op = match holding {
            Holding::Work => FencedOp::Launch { fence: fresh },
            Holding::Revoke => FencedOp::BeginRevoke { fence: fresh },
        };
        let refused = fenced_step(row, op).1 != FencedResponse::Step(Response::Accepted);
        state.clients[c].stage = if refused {
            Stage::Idle
        } else {
            let write = match holding {
                Holding::Work => Write::Claim {
                    absent: row.fence == 0,
                    read: (self.design.claim_write == ClaimWrite::TrustsRead)
                        .then_some((row.phase, row.lapsed)),
                },
                Holding::Revoke => Write::BeginRevoke,
            };
            Stage::Granting { holding, write }
        };
    }

    /// Client `c` answers its finish.
    fn answer(&self, state: &mut State, c: usize, attempt: Attempt, outcome: Outcome, said: Said) {
        let provable = said == Said::InDoubt
            && matches!(
                resolve(state.row, attempt, outcome, MovedEpoch::Unprovable),
                Resolution::Finished(_)
            );
        state.log.attempts[attempt.fence as usize - 1].answer = Some(Answer {
            outcome,
            said,
            provable,
        });
        state.clients[c].stage = Stage::Idle;
    }

    /// Whether `write` could still match the row some day. A fenced write
    /// (a renewal, a revoke end, a finish with its fence guard) matches
    /// only while the row holds its fence in its phase; once the row has
    /// left that, it never returns (fences are never drawn twice), and the
    /// write can only ever match nothing. Claims, revoke begins and
    /// fence-less finishes may always match a later row.
    fn may_apply(&self, row: Record, write: Write) -> bool {
        let (fence, phase) = match write {
            Write::Claim { .. } | Write::BeginRevoke => return true,
            Write::Finish { attempt, .. }
                if attempt.holding == Holding::Work
                    && self.design.finish_guard == FinishGuard::StateOnly =>
            {
                return true;
            }
            Write::Finish { attempt, .. } => (attempt.fence, attempt.holding.phase()),
            Write::Renew { fence } => {
                return row.fence == fence && matches!(row.phase, Phase::Working | Phase::Revoking);
            }
        };
        row.fence == fence && row.phase == phase
    }

    /// Forgets the lingering writes that can never match again: applying
    /// one would change nothing, now or later, so a state with it and one
    /// without have the same futures.
    fn forget_dead_writes(&self, state: &mut State) {
        let row = state.row.record;
        state.lingering.retain(|&write| self.may_apply(row, write));
    }

    /// `write` lingers: nobody waits for it, and it may apply later.
    fn linger(state: &mut State, write: Write) {
        let at = state
            .lingering
            .partition_point(|other| other.key() <= write.key());
        state.lingering.insert(at, write);
    }

    /// The transitions of client `c`.
    fn client_next(&self, state: &State, c: usize, out: &mut Vec<(Action, State)>) {
        let client = state.clients[c];
        match client.stage {
            Stage::Idle => {
                if client.launches > 0 {
                    let mut next = state.clone();
                    next.clients[c].launches -= 1;
                    self.read_for_grant(&mut next, c, Holding::Work);
                    out.push((Action::Launch(c), next));
                }
                if client.revokes > 0 {
                    let mut next = state.clone();
                    next.clients[c].revokes -= 1;
                    self.read_for_grant(&mut next, c, Holding::Revoke);
                    out.push((Action::Revoke(c), next));
                }
            }
            Stage::Reading(holding) => {
                let mut next = state.clone();
                self.read_for_grant(&mut next, c, holding);
                out.push((Action::Read(c), next));
            }
            Stage::Granting { holding, write } => {
                let mut next = state.clone();
                next.clients[c].stage = match self.apply(&mut next, write) {
                    Effect::Granted(attempt) => Stage::Running {
                        attempt,
                        lost: false,
                    },
                    _ => Stage::Reading(holding),
                };
                out.push((Action::Deliver(c), next));
                if state.spent.faults < self.scope.faults {
                    // The grant is in doubt: an error, no attempt.
                    let mut next = state.clone();
                    next.spent.faults += 1;
                    Self::linger(&mut next, write);
                    next.clients[c].stage = Stage::Idle;
                    out.push((Action::Timeout(c), next));
                }
            }
            Stage::Running { attempt, .. } => {
                for outcome in [Outcome::Ok, Outcome::Err] {
                    // The first send: nothing earlier is in doubt, so a
                    // send that matches nothing is `Stale`.
                    let write = Write::Finish { attempt, outcome };
                    let mut next = state.clone();
                    let said = match self.apply(&mut next, write) {
                        Effect::Finished(true) => Said::Applied,
                        _ => Said::Stale,
                    };
                    self.answer(&mut next, c, attempt, outcome, said);
                    out.push((Action::Finish(c, outcome), next));
                    if state.spent.faults < self.scope.faults {
                        let mut next = state.clone();
                        next.spent.faults += 1;
                        Self::linger(&mut next, write);
                        next.clients[c].stage = Stage::Resending {
                            attempt,
                            outcome,
                            round: 1,
                        };
                        out.push((Action::FinishInDoubt(c, outcome), next));
                    }
                }
                if state.spent.renewals < self.scope.renewals {
                    let mut next = state.clone();
                    next.spent.renewals += 1;
                    Self::linger(
                        &mut next,
                        Write::Renew {
                            fence: attempt.fence,
                        },
                    );
                    out.push((Action::Renew(c), next));
                }
            }
            Stage::Awaiting {
                attempt,
                outcome,
                round,
            } => {
                let write = Write::Finish { attempt, outcome };
                let mut next = state.clone();
                match self.apply(&mut next, write) {
                    Effect::Finished(true) => {
                        self.answer(&mut next, c, attempt, outcome, Said::Applied)
                    }
                    // A resend matched nothing: an earlier send may have
                    // applied after all.
                    _ => match self.design.resent_miss {
                        ResentMiss::ReadTheRow => {
                            next.clients[c].stage = Stage::Missed { attempt, outcome }
                        }
                        ResentMiss::AnswerStale => {
                            self.answer(&mut next, c, attempt, outcome, Said::Stale)
                        }
                    },
                }
                out.push((Action::Deliver(c), next));
                if state.spent.faults < self.scope.faults {
                    let mut next = state.clone();
                    next.spent.faults += 1;
                    Self::linger(&mut next, write);
                    if round + 1 >= MAX_SENDS {
                        // The rounds are spent: one last read.
                        next.clients[c].stage = Stage::Missed { attempt, outcome };
                    } else {
                        next.clients[c].stage = Stage::Resending {
                            attempt,
                            outcome,
                            round: round + 1,
                        };
                    }
                    out.push((Action::Timeout(c), next));
                }
            }
            Stage::Resending {
                attempt,
                outcome,
                round,
            } => {
                let mut next = state.clone();
                match self.resolve(state.row, attempt, outcome) {
                    Resolution::Finished(said) => self.answer(&mut next, c, attempt, outcome, said),
                    Resolution::Unapplied => {
                        next.clients[c].stage = Stage::Awaiting {
                            attempt,
                            outcome,
                            round,
                        }
                    }
                    Resolution::Unprovable => {
                        self.answer(&mut next, c, attempt, outcome, Said::InDoubt)
                    }
                }
                out.push((Action::Resolve(c), next));
            }
            Stage::Missed { attempt, outcome } => {
                let mut next = state.clone();
                let said = match self.resolve(state.row, attempt, outcome) {
                    Resolution::Finished(said) => said,
                    _ => Said::InDoubt,
                };
                self.answer(&mut next, c, attempt, outcome, said);
                out.push((Action::Resolve(c), next));
            }
        }
    }
}

/// `attempt.rs`'s `resolve`, reading `row`, with `moved` deciding what an
/// epoch moved on proves.
fn resolve(row: Row, attempt: Attempt, outcome: Outcome, moved: MovedEpoch) -> Resolution {
    let now = row.record;
    let mine = attempt.fence;
    if now.fence == mine && now.phase == attempt.holding.phase() {
        return Resolution::Unapplied;
    }
    let applied = match (attempt.holding, outcome) {
        (Holding::Work, Outcome::Ok) => {
            if row.success_fence == Some(mine) {
                true
            } else if now.epoch == attempt.epoch {
                false
            } else {
                return match moved {
                    MovedEpoch::Unprovable => Resolution::Unprovable,
                    MovedEpoch::ProvesSuccess => Resolution::Finished(Said::Applied),
                };
            }
        }
        // An `Err` end is proved by its fence in the state it leaves; a row
        // moved on since cannot tell.
        (Holding::Work, Outcome::Err) if now.fence == mine && now.phase == Phase::Failed => true,
        (Holding::Work, Outcome::Err) => return Resolution::Unprovable,
        // An ended epoch proves which revoke ended it only while the row is
        // the `NotFound` that end left (it keeps the ender's fence).
        (Holding::Revoke, Outcome::Ok) => {
            if now.epoch == attempt.epoch {
                false
            } else if now.epoch == attempt.epoch + 1 && now.phase == Phase::NotFound {
                now.fence == mine
            } else {
                return Resolution::Unprovable;
            }
        }
        (Holding::Revoke, Outcome::Err) if now.fence == mine && now.phase == Phase::Success => true,
        (Holding::Revoke, Outcome::Err) => return Resolution::Unprovable,
    };
    Resolution::Finished(if applied { Said::Applied } else { Said::Stale })
}

/// The row's fence.
fn row_fence(state: &State) -> Fence {
    state.row.record.fence
}

/// Every answer given, with what became of its attempt.
fn answers(log: &Log) -> impl Iterator<Item = (Answer, History)> + '_ {
    log.attempts
        .iter()
        .filter_map(|history| history.answer.map(|answer| (answer, *history)))
}

impl Model for ClientModel {
    type State = State;
    type Action = Action;

    fn init(&self) -> Vec<State> {
        let revokes = self
            .scope
            .revokes
            .iter()
            .map(|&r| r as usize)
            .sum::<usize>();
        assert!(
            revokes < EPOCHS,
            "{revokes} revokes can reach more than the {EPOCHS} epochs the log counts"
        );
        let client = |c: usize| Client {
            stage: Stage::Idle,
            launches: self.scope.launches[c],
            revokes: self.scope.revokes[c],
        };
        vec![State {
            row: Row {
                record: Record::NEW,
                success_fence: None,
            },
            drawn: 0,
            clients: [client(0), client(1)],
            lingering: Vec::new(),
            spent: Spent::default(),
            log: Log::default(),
        }]
    }

    fn next(&self, state: &State) -> Vec<(Action, State)> {
        let mut out = Vec::new();
        for c in 0..2 {
            self.client_next(state, c, &mut out);
        }
        let mut before = None;
        for (i, &write) in state.lingering.iter().enumerate() {
            // Equal lingering writes apply alike: try the first only.
            if before.replace(write) == Some(write) {
                continue;
            }
            let mut next = state.clone();
            next.lingering.remove(i);
            self.apply(&mut next, write);
            out.push((Action::Apply(write), next));
        }
        let row = state.row.record;
        if state.spent.lapses < self.scope.lapses
            && matches!(row.phase, Phase::Working | Phase::Revoking)
            && !row.lapsed
        {
            let mut next = state.clone();
            next.spent.lapses += 1;
            next.row.record = fenced_step(row, FencedOp::Lapse).0;
            // The holder's own clock, started at its grant's send, has run
            // out no later than the database's.
            for client in &mut next.clients {
                if let Stage::Running { attempt, lost } = &mut client.stage
                    && attempt.fence == row.fence
                {
                    *lost = true;
                }
            }
            out.push((Action::Lapse, next));
        }
        if state.spent.sweeps < self.scope.sweeps {
            let (swept, response) = fenced_step(row, FencedOp::Expire);
            if response == FencedResponse::Expired {
                let mut next = state.clone();
                next.spent.sweeps += 1;
                next.row.record = swept;
                next.log.attempts[row.fence as usize - 1].expired = true;
                out.push((Action::Sweep, next));
            }
        }
        for (_, next) in &mut out {
            self.forget_dead_writes(next);
        }
        out
    }

    fn properties(&self) -> Vec<Property<Self>> {
        let mut properties: Vec<Property<Self>> = vec![
            Property {
                name: ONE_SUCCESS_PER_EPOCH,
                holds: |_, state| state.log.successes.iter().all(|&n| n <= 1),
            },
            Property {
                name: ANSWERS_AGREE,
                holds: |_, state| {
                    answers(&state.log).all(|(answer, history)| {
                        match (answer.outcome, answer.said) {
                            (_, Said::InDoubt) => true,
                            (Outcome::Ok, Said::Applied) => history.applied,
                            (Outcome::Ok, Said::Stale) => !history.applied,
                            (Outcome::Err, Said::Applied) => history.applied || history.expired,
                            (Outcome::Err, Said::Stale) => !history.applied,
                        }
                    })
                },
            },
            Property {
                name: FENCES_INCREASE,
                holds: |_, state| {
                    !state.log.fence_reused && row_fence(state) == state.log.attempts.len() as Fence
                },
            },
            Property {
                name: ONE_EFFECT_PER_EPOCH,
                holds: |_, state| state.log.effects.iter().all(|&n| n <= 1),
            },
            Property {
                name: STALE_FENCE_CHANGES_NOTHING,
                holds: |_, state| !state.log.stale_applied,
            },
            Property {
                name: LOST_BEFORE_TAKEN,
                holds: |_, state| {
                    let row = state.row.record;
                    state.clients.iter().all(|client| match client.stage {
                        Stage::Running {
                            attempt,
                            lost: false,
                        } => {
                            row.fence == attempt.fence
                                && row.phase == attempt.holding.phase()
                                && !row.lapsed
                        }
                        _ => true,
                    })
                },
            },
            Property {
                name: IN_DOUBT_ONLY_WHEN_UNPROVABLE,
                holds: |_, state| {
                    answers(&state.log).all(|(a, _)| a.said != Said::InDoubt || !a.provable)
                },
            },
        ];
        if self.exact_err_answers {
            properties.push(Property {
                name: EXACT_ERR_ANSWERS,
                holds: |_, state| {
                    answers(&state.log).all(|(answer, history)| {
                        match (answer.outcome, answer.said) {
                            (Outcome::Err, Said::Applied) => history.applied,
                            (Outcome::Err, Said::Stale) => !history.applied,
                            _ => true,
                        }
                    })
                },
            });
        }
        properties
    }
}

// Compact forms for the traces a counterexample prints.

impl fmt::Debug for Row {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.record;
        write!(f, "{:?} e{} f{}", r.phase, r.epoch, r.fence)?;
        if r.lapsed {
            write!(f, " lapsed")?;
        }
        if let Some(fence) = self.success_fence {
            write!(f, " success_fence {fence}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} f{} e{}", self.holding, self.fence, self.epoch)
    }
}

impl fmt::Debug for Write {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Write::Claim { absent, read } => {
                write!(f, "Claim")?;
                if absent {
                    write!(f, "(absent)")?;
                }
                if let Some((phase, lapsed)) = read {
                    let lapsed = if lapsed { " lapsed" } else { "" };
                    write!(f, "(trusting {phase:?}{lapsed})")?;
                }
                Ok(())
            }
            Write::BeginRevoke => write!(f, "BeginRevoke"),
            Write::Renew { fence } => write!(f, "Renew f{fence}"),
            Write::Finish { attempt, outcome } => write!(f, "Finish({attempt:?}, {outcome:?})"),
        }
    }
}

impl fmt::Debug for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Stage::Idle => write!(f, "Idle"),
            Stage::Reading(holding) => write!(f, "Reading({holding:?})"),
            Stage::Granting { write, .. } => write!(f, "Granting({write:?})"),
            Stage::Running { attempt, lost } => {
                let lost = if lost { ", lost" } else { "" };
                write!(f, "Running({attempt:?}{lost})")
            }
            Stage::Awaiting {
                attempt,
                outcome,
                round,
            } => write!(f, "Awaiting({attempt:?}, {outcome:?}, send {round})"),
            Stage::Resending {
                attempt,
                outcome,
                round,
            } => write!(f, "Resending({attempt:?}, {outcome:?}, send {round})"),
            Stage::Missed { attempt, outcome } => write!(f, "Missed({attempt:?}, {outcome:?})"),
        }
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} (launches {}, revokes {})",
            self.stage, self.launches, self.revokes
        )
    }
}

impl fmt::Debug for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} answered {:?}", self.outcome, self.said)?;
        if self.provable {
            write!(f, " (provable)")?;
        }
        Ok(())
    }
}

impl fmt::Debug for History {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if self.applied {
            parts.push("applied".to_owned());
        }
        if self.expired {
            parts.push("expired".to_owned());
        }
        if let Some(answer) = self.answer {
            parts.push(format!("{answer:?}"));
        }
        if parts.is_empty() {
            parts.push("granted".to_owned());
        }
        write!(f, "{}", parts.join(", "))
    }
}

impl fmt::Debug for Log {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, history) in self.attempts.iter().enumerate() {
            write!(f, "f{}: {history:?}; ", i + 1)?;
        }
        write!(
            f,
            "successes per epoch {:?}, effects per epoch {:?}",
            self.successes, self.effects
        )?;
        if self.stale_applied {
            write!(f, ", a stale fence applied")?;
        }
        if self.fence_reused {
            write!(f, ", a fence reused")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Spent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "faults {}, lapses {}, sweeps {}, renewals {}",
            self.faults, self.lapses, self.sweeps, self.renewals
        )
    }
}

impl fmt::Debug for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "row {:?} (drawn {}) | 0: {:?} | 1: {:?}",
            self.row, self.drawn, self.clients[0], self.clients[1]
        )?;
        if !self.lingering.is_empty() {
            write!(f, " | lingering {:?}", self.lingering)?;
        }
        write!(f, "\n    spent: {:?} | log: {:?}", self.spent, self.log)
    }
}
