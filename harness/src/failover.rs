//! The fenced protocol through a PostgreSQL failover, as a [`Model`] for
//! [`explore::check`](crate::explore::check): one id, two workers, a
//! primary whose commit log a standby receives with a lag, and a promotion
//! that makes the standby's copy of the log the truth.
//!
//! Each commit appends the row it leaves, computed by
//! [`spec::fenced_step`](async_tasks_recorder::spec::fenced_step); the row
//! is the log's last entry. A fence is drawn
//! as one more than the greatest fence in the log, so a promotion that
//! loses a claim's commit also loses its fence, which is then drawn again
//! (the sequence is WAL-logged, and what the standby never received it
//! never knew). The database clock lets the running lease lapse at any
//! moment.
//!
//! A worker claims, then finishes with `Ok`; a claim in doubt is given up,
//! a finish in doubt is resolved by reading the row. What a worker is
//! *told* (a grant with its fence, a finish `Applied`) is recorded, and the
//! properties compare it with the truth after any promotion:
//! - [`ACKNOWLEDGED_SUCCESS_SURVIVES`]: every success answered `Applied` is
//!   the row's success;
//! - [`ONE_SUCCESS_PER_EPOCH`]: at most one fence is answered `Applied`;
//! - [`FENCES_NEVER_REISSUED`]: no fence is granted to two attempts.
//!
//! [`Design`] picks how replication acknowledges a commit, what a worker
//! makes of a synchronous wait cancelled under it, and how a finish in
//! doubt is resolved. The crate's design keeps all three properties; each
//! weaker choice has a counterexample (`harness/tests/failover_model.rs`).

use crate::explore::{Model, Property};
use async_tasks_recorder::spec::{
    Fence, FencedOp, FencedResponse, Outcome, Phase, Record, Response, fenced_step,
};

/// How a commit is acknowledged.
#[derive(Clone, Copy, Debug, Eq, PartialEq, Hash)]
pub enum Replication {
    /// At once: the standby receives the log later (`synchronous_commit`
    /// without a synchronous standby).
    Asynchronous,
    /// Once the standby has the commit (`synchronous_standby_names`, and
    /// promotion only of that standby).
    Synchronous,
}

/// What a worker makes of a commit whose synchronous wait was cancelled
/// (a query cancel or a statement timeout: the server warns "already
/// committed locally, but might not have been replicated", and answers
/// the statement).
#[derive(Clone, Copy, Debug, Eq, PartialEq, Hash)]
pub enum CancelledWait {
    /// The answer is taken as it came: a grant, or `Applied`.
    Trusted,
    /// The answer is in doubt, like a broken connection.
    InDoubt,
}

/// How a finish in doubt is answered from the row.
#[derive(Clone, Copy, Debug, Eq, PartialEq, Hash)]
pub enum Resolution {
    /// A row showing this attempt's success is answered `Applied` at once.
    TrustRead,
    /// The row's success is answered `Applied` only after a write of the
    /// resolver's own has been acknowledged by the standby: the log is
    /// replicated in order, so the success before it is on the standby too.
    ConfirmReplicated,
}

/// The choices a run of the model checks.
#[derive(Clone, Copy, Debug, Eq, PartialEq, Hash)]
pub struct Design {
    /// How a commit is acknowledged.
    pub replication: Replication,
    /// What a cancelled synchronous wait means.
    pub cancelled_wait: CancelledWait,
    /// How a finish in doubt is resolved.
    pub resolution: Resolution,
}

impl Design {
    /// The crate's design: synchronous replication, a cancelled wait in
    /// doubt, and resolution that confirms replication.
    pub const CHOSEN: Design = Design {
        replication: Replication::Synchronous,
        cancelled_wait: CancelledWait::InDoubt,
        resolution: Resolution::ConfirmReplicated,
    };
}

/// The scope of a check.
#[derive(Clone, Copy, Debug)]
pub struct Scope {
    /// Claims each worker may try.
    pub claims: u8,
    /// Promotions in a run.
    pub failovers: u8,
    /// Synchronous waits that may be cancelled in a run.
    pub cancels: u8,
    /// Resolutions a finish in doubt may try before it gives up (in doubt).
    pub resolutions: u8,
}

impl Default for Scope {
    fn default() -> Self {
        Scope {
            claims: 2,
            failovers: 1,
            cancels: 2,
            resolutions: 2,
        }
    }
}

/// The model: a design at a scope.
pub struct Failover {
    /// The choices checked.
    pub design: Design,
    /// How far the search goes.
    pub scope: Scope,
}

/// What a worker sent and waits to hear of.
#[derive(Clone, Copy, Debug, Eq, PartialEq, Hash)]
pub enum Write {
    /// A claim that drew `fence`.
    Claim(Fence),
    /// The finish of the attempt holding `fence`.
    Finish(Fence),
    /// The resolver's own write, confirming the success of `fence`.
    Confirm(Fence),
}

/// Where a worker is.
#[derive(Clone, Copy, Debug, Eq, PartialEq, Hash)]
pub enum Worker {
    /// Not holding the id; `claims` tries left.
    Idle {
        /// Claims left.
        claims: u8,
    },
    /// Committed `write` at log position `at`, waiting for the standby.
    Waiting {
        /// What was sent.
        write: Write,
        /// Its commit's position in the log.
        at: u8,
        /// Claims left after this one.
        claims: u8,
        /// Resolutions left.
        resolutions: u8,
    },
    /// Holding the id under `fence`; its task has run.
    Holding {
        /// The attempt's fence.
        fence: Fence,
    },
    /// Its finish is in doubt.
    Resolving {
        /// The attempt's fence.
        fence: Fence,
        /// Resolutions left.
        resolutions: u8,
    },
    /// Done (answered, or given up in doubt).
    Done,
}

/// A whole state.
#[derive(Clone, Debug, Eq, PartialEq, Hash)]
pub struct State {
    /// The primary's commit log: the row after each commit.
    pub log: Vec<Record>,
    /// How many of those the standby has.
    pub replicated: u8,
    /// The running lease has run out by the database clock.
    pub lapsed: bool,
    /// The workers.
    pub workers: [Worker; 2],
    /// Fences granted to a worker, in order.
    pub granted: Vec<Fence>,
    /// Fences answered `Applied`.
    pub applied: Vec<Fence>,
    /// Promotions so far.
    pub failovers: u8,
    /// Cancelled waits so far.
    pub cancels: u8,
}

/// An action of a worker or of the system.
#[derive(Clone, Copy, Debug, Eq, PartialEq, Hash)]
pub enum Action {
    /// Worker `0` sends a claim.
    Claim(usize),
    /// Worker `0` sends its finish.
    Finish(usize),
    /// Worker `0` reads the row to resolve its finish.
    Resolve(usize),
    /// The standby's acknowledgement reaches worker `0`.
    Acknowledge(usize),
    /// Worker `0`'s synchronous wait is cancelled.
    CancelWait(usize),
    /// The standby receives the next commit.
    Replicate,
    /// The running lease runs out.
    Lapse,
    /// The primary dies; the standby is promoted with what it has.
    Promote,
}

/// [`Failover`]'s property: every success answered `Applied` is the row's.
pub const ACKNOWLEDGED_SUCCESS_SURVIVES: &str = "every acknowledged success survives";
/// [`Failover`]'s property: at most one success is answered per epoch.
pub const ONE_SUCCESS_PER_EPOCH: &str = "at most one success per epoch";
/// [`Failover`]'s property: no fence is granted twice.
pub const FENCES_NEVER_REISSUED: &str = "no fence is granted twice";

impl State {
    /// The row: the log's last entry, with the clock's lapse.
    fn row(&self) -> Record {
        let row = self.log.last().copied().unwrap_or(Record::NEW);
        Record {
            lapsed: self.lapsed && matches!(row.phase, Phase::Working),
            ..row
        }
    }

    /// The next fence the sequence hands out.
    fn next_fence(&self) -> Fence {
        self.log.iter().map(|r| r.fence).max().unwrap_or(0) + 1
    }

    /// Commits `row`: its position in the log.
    fn commit(&mut self, row: Record) -> u8 {
        self.log.push(Record {
            lapsed: false,
            ..row
        });
        self.lapsed = false;
        (self.log.len() - 1) as u8
    }
}

impl Failover {
    /// Worker `w` has the answer to `write`: what it does next.
    fn answered(&self, state: &mut State, w: usize, write: Write) {
        state.workers[w] = match write {
            Write::Claim(fence) => {
                state.granted.push(fence);
                Worker::Holding { fence }
            }
            Write::Finish(fence) | Write::Confirm(fence) => {
                state.applied.push(fence);
                Worker::Done
            }
        };
    }

    /// Worker `w`'s `write` is in doubt: a claim is given up, a finish is
    /// resolved.
    fn in_doubt(&self, state: &mut State, w: usize, write: Write, claims: u8, resolutions: u8) {
        state.workers[w] = match write {
            Write::Claim(_) => Worker::Idle { claims },
            Write::Finish(fence) | Write::Confirm(fence) if resolutions > 0 => {
                Worker::Resolving { fence, resolutions }
            }
            _ => Worker::Done,
        };
    }

    /// Worker `w` commits `write` leaving `row`: answered at once, or
    /// waiting for the standby.
    fn send(
        &self,
        state: &mut State,
        w: usize,
        write: Write,
        row: Record,
        claims: u8,
        resolutions: u8,
    ) {
        let at = state.commit(row);
        match self.design.replication {
            Replication::Asynchronous => self.answered(state, w, write),
            Replication::Synchronous => {
                state.workers[w] = Worker::Waiting {
                    write,
                    at,
                    claims,
                    resolutions,
                }
            }
        }
    }

    /// Worker `w` sends the finish of `fence`, with `resolutions` left.
    fn finish(&self, state: &mut State, w: usize, fence: Fence, resolutions: u8) {
        let (row, response) = fenced_step(
            state.row(),
            FencedOp::Finish {
                fence,
                outcome: Outcome::Ok,
            },
        );
        match response {
            FencedResponse::Step(_) => {
                self.send(state, w, Write::Finish(fence), row, 0, resolutions)
            }
            // Stale: nothing changed, and the worker is told so.
            _ => state.workers[w] = Worker::Done,
        }
    }
}

impl Model for Failover {
    type State = State;
    type Action = Action;

    fn init(&self) -> Vec<State> {
        vec![State {
            log: Vec::new(),
            replicated: 0,
            lapsed: false,
            workers: [Worker::Idle {
                claims: self.scope.claims,
            }; 2],
            granted: Vec::new(),
            applied: Vec::new(),
            failovers: 0,
            cancels: 0,
        }]
    }

    fn next(&self, state: &State) -> Vec<(Action, State)> {
        let mut out = Vec::new();
        for w in 0..2 {
            match state.workers[w] {
                Worker::Idle { claims } if claims > 0 => {
                    let mut next = state.clone();
                    let fence = next.next_fence();
                    let (row, response) = fenced_step(next.row(), FencedOp::Launch { fence });
                    if response == FencedResponse::Step(Response::Accepted) {
                        self.send(&mut next, w, Write::Claim(fence), row, claims - 1, 0);
                    } else {
                        next.workers[w] = Worker::Idle { claims: claims - 1 };
                    }
                    out.push((Action::Claim(w), next));
                }
                Worker::Holding { fence } => {
                    let mut next = state.clone();
                    self.finish(&mut next, w, fence, self.scope.resolutions);
                    out.push((Action::Finish(w), next));
                }
                Worker::Waiting {
                    write,
                    at,
                    claims,
                    resolutions,
                } => {
                    if state.replicated > at {
                        let mut next = state.clone();
                        self.answered(&mut next, w, write);
                        out.push((Action::Acknowledge(w), next));
                    }
                    if state.cancels < self.scope.cancels {
                        let mut next = state.clone();
                        next.cancels += 1;
                        match self.design.cancelled_wait {
                            CancelledWait::Trusted => self.answered(&mut next, w, write),
                            CancelledWait::InDoubt => {
                                self.in_doubt(&mut next, w, write, claims, resolutions)
                            }
                        }
                        out.push((Action::CancelWait(w), next));
                    }
                }
                Worker::Resolving { fence, resolutions } => {
                    let mut next = state.clone();
                    let row = state.row();
                    let left = resolutions - 1;
                    if row.phase == Phase::Working && row.fence == fence {
                        // Not applied: sent again.
                        self.finish(&mut next, w, fence, left);
                    } else if row.phase == Phase::Success && row.fence == fence {
                        match self.design.resolution {
                            Resolution::TrustRead => {
                                next.applied.push(fence);
                                next.workers[w] = Worker::Done;
                            }
                            Resolution::ConfirmReplicated => {
                                self.send(&mut next, w, Write::Confirm(fence), row, 0, left)
                            }
                        }
                    } else {
                        // The row proves the finish did not apply: Stale.
                        next.workers[w] = Worker::Done;
                    }
                    out.push((Action::Resolve(w), next));
                }
                _ => {}
            }
        }
        if (state.replicated as usize) < state.log.len() {
            let mut next = state.clone();
            next.replicated += 1;
            out.push((Action::Replicate, next));
        }
        if state.row().phase == Phase::Working && !state.lapsed {
            let mut next = state.clone();
            next.lapsed = true;
            out.push((Action::Lapse, next));
        }
        if state.failovers < self.scope.failovers {
            let mut next = state.clone();
            next.failovers += 1;
            next.log.truncate(state.replicated as usize);
            // A new standby is made from the new primary: it has everything.
            next.replicated = next.log.len() as u8;
            // Every wait on the old primary ends with its connection.
            for w in 0..2 {
                if let Worker::Waiting {
                    write,
                    claims,
                    resolutions,
                    ..
                } = next.workers[w]
                {
                    self.in_doubt(&mut next, w, write, claims, resolutions);
                }
            }
            out.push((Action::Promote, next));
        }
        out
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property {
                name: ACKNOWLEDGED_SUCCESS_SURVIVES,
                holds: |_, state| {
                    let row = state.row();
                    state
                        .applied
                        .iter()
                        .all(|&fence| row.phase == Phase::Success && row.fence == fence)
                },
            },
            Property {
                name: ONE_SUCCESS_PER_EPOCH,
                holds: |_, state| {
                    let mut fences = state.applied.clone();
                    fences.sort_unstable();
                    fences.dedup();
                    fences.len() <= 1
                },
            },
            Property {
                name: FENCES_NEVER_REISSUED,
                holds: |_, state| {
                    let mut fences = state.granted.clone();
                    fences.sort_unstable();
                    fences.windows(2).all(|pair| pair[0] != pair[1])
                },
            },
        ]
    }
}
