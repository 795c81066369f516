//! One side of the comparison: recorders on a fresh PostgreSQL table, or
//! on a fresh simulated server, the attempts they hold, and what their rows
//! are after each step.
//!
//! # The clock
//! Leases lapse by ticks of [`TICK`], decided by statement parameters only,
//! so that both sides judge every lease alike whatever their clocks (the
//! cluster's is real time, the simulator's tokio's): at tick `k` the calls go
//! through the side's recorder of tick `k`, which judges leases as if
//! `k·TICK + TICK/2` had passed (`shift_clock`) and grants leases of
//! `(k + LEASE_TICKS)·TICK`. A lease granted at tick `j` and judged at tick
//! `k` has then run out iff
//! `(j + LEASE_TICKS)·TICK <= elapsed + k·TICK + TICK/2`, which for any
//! real time `elapsed` between the grant and the judgement of less than
//! `TICK/2` (a sequence takes seconds; `TICK` is 1000 s) is
//! `k >= j + LEASE_TICKS`: every lease lapses exactly `LEASE_TICKS` ticks
//! after its grant, on both sides. No lease lapses by itself, and renewals
//! are off (they would only come every third of a lease anyway).

use super::ops::{Answer, Failure, IDS, Op, failure};
use crate::common::{cluster, table, within};
use async_tasks_recorder_pg::sim::{Faults, Server};
use async_tasks_recorder_pg::{
    Attempt, Bounds, Config, Epoch, Fence, Lease, PgRecorder, Phase, Statements, Stored, phase_of,
};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_postgres::types::Type;

/// One tick of the clock.
pub const TICK: Duration = Duration::from_secs(1000);
/// A lease runs out this many ticks after its grant.
pub const LEASE_TICKS: u32 = 2;
/// The clock stops here (so a sequence opens at most this many recorders
/// and one more).
pub const LAST_TICK: u32 = 12;

/// The bound on each call of a step, in seconds.
const CALL: u64 = 30;

/// The settings of the recorders of tick `tick`.
fn config(tick: u32) -> Config {
    Config {
        lease: TICK * (tick + LEASE_TICKS),
        pool_size: 4,
        renewal_pool_size: 1,
        bounds: Bounds {
            statement: Some(Duration::from_secs(10)),
            lock: Some(Duration::from_secs(5)),
            connection: Some(Duration::from_secs(10)),
        },
        ..Config::default()
    }
}

/// How far the recorders of tick `tick` see the database clock ahead.
fn shift(tick: u32) -> Duration {
    TICK * tick + TICK / 2
}

/// What the simulator on the simulated side is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Simulator {
    /// The simulator as it is.
    Faithful,
    /// Its finish ignores the fence (`Server::drop_finish_fence`): the
    /// known-different simulator of the bites.
    FinishWithoutFence,
}

enum Backend {
    /// A fresh table of the throwaway cluster, and a plain client that
    /// reads its rows.
    Postgres {
        table: String,
        client: Arc<tokio_postgres::Client>,
    },
    Simulated(Arc<Server>),
}

/// One row as stored, as both sides can tell it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Row {
    pub phase: Phase,
    pub epoch: Epoch,
    pub fence: Fence,
    pub success_fence: Option<Fence>,
    /// The tick at which its lease runs out: `None` without a lease.
    pub lapses_at: Option<i64>,
}

/// A side's rows and reads after a step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// The table's rows, by id.
    pub rows: BTreeMap<i64, Row>,
    /// `read` of every id through the recorder of the current tick.
    pub reads: Vec<(i64, Result<Stored, Failure>)>,
}

impl Snapshot {
    /// The read of `id`, if it answered.
    pub fn read(&self, id: i64) -> Option<&Stored> {
        self.reads
            .iter()
            .find(|(read, _)| *read == id)
            .and_then(|(_, stored)| stored.as_ref().ok())
    }
}

/// The tick a lease with `remaining` microseconds to run lapses at: the
/// nearest whole tick (the real time since its grant is far less than half
/// a tick).
fn lapse_tick(remaining: i64) -> i64 {
    let tick = TICK.as_micros() as i64;
    (remaining + tick / 2).div_euclid(tick)
}

pub struct Side {
    backend: Backend,
    /// The recorders of each tick used so far.
    recorders: BTreeMap<u32, PgRecorder<i64>>,
    tick: u32,
    /// Attempts held, in the order granted: (a revoke's, the attempt).
    held: Vec<(bool, Attempt<i64>)>,
    /// Every lease granted: (a revoke's, the lease).
    leases: Vec<(bool, Lease<i64>)>,
}

impl Side {
    /// A side on a fresh table of the cluster, made by the DDL `install`
    /// runs for an absent table (in one round trip, without install's
    /// checks of the catalog).
    pub async fn postgres(client: Arc<tokio_postgres::Client>) -> Side {
        let table = table("diff");
        let ddl = Statements::new(&table, "bigint").schema;
        within(CALL, "create the table", client.batch_execute(&ddl))
            .await
            .unwrap_or_else(|e| panic!("create {table}: {e}"));
        Side::on(Backend::Postgres { table, client })
    }

    /// A side on a fresh simulated server without faults.
    pub fn simulated(simulator: Simulator) -> Side {
        let server = Server::new(0, Type::INT8, Faults::NONE);
        if simulator == Simulator::FinishWithoutFence {
            server.drop_finish_fence();
        }
        Side::on(Backend::Simulated(server))
    }

    fn on(backend: Backend) -> Side {
        Side {
            backend,
            recorders: BTreeMap::new(),
            tick: 0,
            held: Vec::new(),
            leases: Vec::new(),
        }
    }

    /// Attempts held now.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// The recorder of the current tick, opened at its first use.
    fn recorder(&mut self) -> PgRecorder<i64> {
        let tick = self.tick;
        if let Some(recorder) = self.recorders.get(&tick) {
            return recorder.clone();
        }
        let recorder = match &self.backend {
            Backend::Postgres { table, .. } => {
                PgRecorder::new(cluster().config("postgres"), table, config(tick))
            }
            Backend::Simulated(server) => PgRecorder::simulated(server, config(tick)),
        }
        .unwrap_or_else(|e| panic!("recorder of tick {tick}: {e}"));
        recorder.shift_clock(shift(tick));
        recorder.set_renewing(false);
        self.recorders.insert(tick, recorder.clone());
        recorder
    }

    fn hold(&mut self, revoke: bool, attempt: Attempt<i64>) -> Answer {
        let lease = attempt.lease().clone();
        let answer = Answer::Granted {
            fence: lease.fence(),
            epoch: lease.epoch(),
        };
        self.leases.push((revoke, lease));
        self.held.push((revoke, attempt));
        answer
    }

    /// Takes held attempt `pick` (modulo those held).
    fn take(&mut self, pick: u8) -> Option<(bool, Attempt<i64>)> {
        match self.held.len() {
            0 => None,
            n => Some(self.held.remove(pick as usize % n)),
        }
    }

    /// Runs `op`: its answer.
    pub async fn apply(&mut self, op: Op) -> Answer {
        let r = self.recorder();
        let what = format!("{op:?}");
        match op {
            Op::Claim(id) => match within(CALL, &what, r.claim(id)).await {
                Ok(Ok(attempt)) => self.hold(false, attempt),
                Ok(Err(why)) => Answer::Refused(why),
                Err(e) => failure(e),
            },
            Op::RevokeBegin(id) => match within(CALL, &what, r.revoke_begin(id)).await {
                Ok(Ok(attempt)) => self.hold(true, attempt),
                Ok(Err(why)) => Answer::RevokeRefused(why),
                Err(e) => failure(e),
            },
            Op::Finish(pick, outcome) => {
                let Some((revoke, attempt)) = self.take(pick) else {
                    return Answer::NoneHeld;
                };
                let fence = attempt.lease().fence();
                match within(CALL, &what, attempt.finish(outcome)).await {
                    Ok(finish) => Answer::Finished {
                        revoke,
                        fence,
                        finish,
                    },
                    Err(e) => failure(e),
                }
            }
            Op::Drop(pick) => {
                let Some((_, attempt)) = self.take(pick) else {
                    return Answer::NoneHeld;
                };
                let (id, fence) = (*attempt.lease().id(), attempt.lease().fence());
                drop(attempt);
                match within(CALL, &what, settled(&r, id, fence)).await {
                    Ok(()) => Answer::Dropped { id, fence },
                    Err(e) => failure(e),
                }
            }
            Op::Query(id) => match within(CALL, &what, r.query(&id)).await {
                Ok(state) => Answer::State(state),
                Err(e) => failure(e),
            },
            Op::Read(id) => match within(CALL, &what, r.read(&id)).await {
                Ok(stored) => Answer::Read(stored),
                Err(e) => failure(e),
            },
            Op::Wait(id) => match within(CALL, &what, r.read(&id)).await {
                Ok(now) if now.phase == Phase::Working && !now.lapsed => Answer::WouldWait,
                Ok(_) => match within(CALL, &what, r.wait(&id)).await {
                    Ok(state) => Answer::State(state),
                    Err(e) => failure(e),
                },
                Err(e) => failure(e),
            },
            Op::Page(state, after, limit) => {
                match within(CALL, &what, r.list_page(state, after.as_ref(), limit)).await {
                    Ok(page) => Answer::Page {
                        ids: page.ids,
                        next: page.next,
                    },
                    Err(e) => failure(e),
                }
            }
            Op::List(state) => match within(CALL, &what, r.list(state)).await {
                Ok(ids) => Answer::Ids(ids),
                Err(e) => failure(e),
            },
            Op::Count(state) => match within(CALL, &what, r.count(state)).await {
                Ok(n) => Answer::Count(n),
                Err(e) => failure(e),
            },
            Op::Sweep(limit) => match within(CALL, &what, r.sweep(limit)).await {
                Ok(mut swept) => {
                    swept.sort_by_key(|(id, _)| *id);
                    Answer::Swept(swept)
                }
                Err(e) => failure(e),
            },
            Op::Resolve(pick, outcome) => {
                let Some((revoke, lease)) = (match self.leases.len() {
                    0 => None,
                    n => Some(self.leases[pick as usize % n].clone()),
                }) else {
                    return Answer::NoneHeld;
                };
                let resolved = r.resolve_finish(&lease, revoke, outcome);
                match within(CALL, &what, resolved).await {
                    Ok(finish) => Answer::Resolved {
                        fence: lease.fence(),
                        finish,
                    },
                    Err(e) => failure(e),
                }
            }
            Op::Tick(ticks) => {
                self.tick = (self.tick + ticks).min(LAST_TICK);
                Answer::Ticked(self.tick)
            }
        }
    }

    /// The rows of the table, and a read of every id.
    pub async fn snapshot(&mut self) -> Snapshot {
        let recorder = self.recorder();
        let mut read = Vec::new();
        // One after the other: at a new tick, reads at once would each open
        // a connection of the new recorder's pool.
        for id in IDS {
            let stored = within(CALL, "read of every id", recorder.read(&id)).await;
            let stored = stored.map_err(|e| match failure(e) {
                Answer::Failed(failure) => failure,
                _ => unreachable!(),
            });
            read.push((id, stored));
        }
        Snapshot {
            rows: self.rows().await,
            reads: read,
        }
    }

    async fn rows(&self) -> BTreeMap<i64, Row> {
        match &self.backend {
            Backend::Postgres { table, client } => {
                let sql = format!(
                    "SELECT id, state, epoch, fence, success_fence,
                       (extract(epoch FROM lease_until - clock_timestamp()) * 1000000)::bigint
                     FROM \"{table}\""
                );
                let rows = within(CALL, "the table's rows", client.query(&sql, &[]))
                    .await
                    .unwrap_or_else(|e| panic!("the rows of {table}: {e}"));
                rows.iter()
                    .map(|row| {
                        let remaining: Option<i64> = row.get(5);
                        let epoch: i64 = row.get(2);
                        let fence: i64 = row.get(3);
                        let success: Option<i64> = row.get(4);
                        let stored = Row {
                            phase: phase_of(row.get(1)),
                            epoch: epoch as Epoch,
                            fence: fence as Fence,
                            success_fence: success.map(|f| f as Fence),
                            lapses_at: remaining.map(lapse_tick),
                        };
                        (row.get(0), stored)
                    })
                    .collect()
            }
            Backend::Simulated(server) => {
                let now = server.now();
                server
                    .rows()
                    .into_iter()
                    .map(|(key, stored)| {
                        let key: [u8; 8] = key.try_into().expect("an 8-byte bigint key");
                        let row = Row {
                            phase: stored.phase,
                            epoch: stored.epoch,
                            fence: stored.fence,
                            success_fence: stored.success_fence,
                            lapses_at: stored.lease_until.map(|until| lapse_tick(until - now)),
                        };
                        (i64::from_be_bytes(key), row)
                    })
                    .collect()
            }
        }
    }

    /// The simulator's trace, its last `lines` (none for PostgreSQL).
    pub fn trace(&self, lines: usize) -> Vec<String> {
        match &self.backend {
            Backend::Postgres { .. } => Vec::new(),
            Backend::Simulated(server) => {
                let trace = server.trace();
                trace[trace.len().saturating_sub(lines)..].to_vec()
            }
        }
    }

    /// Closes the recorders and, on PostgreSQL, has the table and its
    /// fence sequence dropped, with others in one batch (one commit). Call
    /// it once nothing is held.
    pub async fn close(mut self) {
        assert!(self.held.is_empty(), "closing a side that holds attempts");
        self.recorders.clear();
        let Backend::Postgres { table, client } = &self.backend else {
            return;
        };
        let batch = {
            let mut closed = CLOSED.lock().unwrap();
            closed.push(table.clone());
            match closed.len() >= DROPPED_TOGETHER {
                true => std::mem::take(&mut *closed),
                false => return,
            }
        };
        let tables: Vec<_> = batch.iter().map(|t| format!("\"{t}\"")).collect();
        let fences: Vec<_> = batch.iter().map(|t| format!("\"{t}$fence\"")).collect();
        let sql = format!(
            "DROP TABLE {}; DROP SEQUENCE {}",
            tables.join(", "),
            fences.join(", ")
        );
        within(CALL, "drop the tables", client.batch_execute(&sql))
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}

/// Tables closed and not dropped yet (the cluster goes with the process).
static CLOSED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// How many closed tables are dropped in one batch.
const DROPPED_TOGETHER: usize = 20;

/// Waits until the row of `id` no longer shows the attempt holding `fence`
/// (its drop guard's finish landed), or at once if it did not (a zombie's
/// guard changes nothing: its fence guard never matches again).
async fn settled(
    r: &PgRecorder<i64>,
    id: i64,
    fence: Fence,
) -> Result<(), async_tasks_recorder_pg::Error> {
    loop {
        let now = r.read(&id).await?;
        if now.fence != fence || !matches!(now.phase, Phase::Working | Phase::Revoking) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}
