//! A simulated database for the recorder's own client code (`test-hooks`
//! only): the table of `sim/table.rs`, whose every statement's effect is
//! `spec::fenced_step`'s, behind connections that lose requests and
//! replies, apply statements late (after the client saw an error, even
//! after its resend), stop answering without closing anything, keep a row
//! locked for a frozen holder, run out of connections, step the database
//! clock, and crash and restart losing nothing committed.
//!
//! The database clock is tokio's: run under a paused current-thread
//! runtime, a run is a function of its seed. Every choice the server makes
//! is drawn from its seeded generator, in the order statements arrive, and
//! every statement, fault and answer is written to its trace.
//!
//! [`PgRecorder::simulated`](crate::PgRecorder::simulated) opens a recorder
//! on a [`Server`]: the same recorder, attempts, renewals, sweeper and
//! bounds as on PostgreSQL, with only the statements' transport replaced
//! (`store.rs`).

mod row;
mod table;

pub use crate::store::Which;
pub use row::Row;
pub use table::{Applied, Micros, Stored, Table};

use crate::error::Error;
use crate::store::{Param, PoolOf};
use row::Params;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_postgres::types::Type;

/// How often each fault strikes a statement, in parts per thousand of the
/// statements it can strike (writes; reads only get the faults that change
/// nothing). Every rate 0: a faithful, fault-free database.
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq)]
pub struct Faults {
    /// The connection resets before the statement reaches the server.
    pub reset_before: u16,
    /// The statement applies; the connection resets before its reply.
    pub reset_after: u16,
    /// The request is lost: no reply ever comes, nothing applies.
    pub silent_before: u16,
    /// The statement applies; its reply never comes.
    pub silent_after: u16,
    /// The connection resets at once, and the statement applies later
    /// (up to `late_by`), after the client saw the error and maybe resent.
    pub late: u16,
    /// The statement applies at once and its reply comes after a delay of
    /// up to `slow_by` (past the client's bound, sometimes).
    pub slow: u16,
    /// Longest delay of a late statement.
    pub late_by: Duration,
    /// Longest delay of a slow reply.
    pub slow_by: Duration,
}

impl Faults {
    /// No fault at all.
    pub const NONE: Faults = Faults {
        reset_before: 0,
        reset_after: 0,
        silent_before: 0,
        silent_after: 0,
        late: 0,
        slow: 0,
        late_by: Duration::ZERO,
        slow_by: Duration::ZERO,
    };
}

/// What the server does to one statement.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
enum Fate {
    Answer,
    ResetBefore,
    ResetAfter,
    SilentBefore,
    SilentAfter,
    Late(Duration),
    Slow(Duration),
}

/// A small, fast, seeded generator (SplitMix64): the one source of every
/// choice in a run.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// The generator of `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 if `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    /// True `per_mille` times in a thousand.
    pub fn chance(&mut self, per_mille: u16) -> bool {
        self.below(1000) < u64::from(per_mille)
    }

    /// A duration in `0..=max`, in whole milliseconds.
    pub fn up_to(&mut self, max: Duration) -> Duration {
        Duration::from_millis(self.below(max.as_millis() as u64 + 1))
    }
}

/// The lines of the trace kept for a failure report.
const TRACE_LINES: usize = 5_000;

/// The simulated database server, shared by every recorder of a run.
pub struct Server {
    state: Mutex<State>,
    /// The instant the database clock reads 0.
    epoch: Instant,
}

struct State {
    table: Table,
    rng: Rng,
    faults: Faults,
    /// Added to the database clock (a stepped clock).
    clock_offset: Micros,
    /// No reply comes until then.
    silent_until: Option<Instant>,
    /// No reply comes to one recorder's connections until then: a
    /// partition between it and the database, by recorder.
    cut_off_until: BTreeMap<usize, Instant>,
    /// Recorders opened so far (each one's pools get the next number).
    recorders: usize,
    /// No connection is handed out until then.
    exhausted_until: Option<Instant>,
    /// The server is down (restarting) until then.
    down_until: Option<Instant>,
    /// Rows a frozen holder keeps locked, until when.
    locked: BTreeMap<Vec<u8>, Instant>,
    /// Crashes so far: a statement in flight across one never applies.
    generation: u64,
    trace: VecDeque<String>,
    statements: u64,
}

impl Server {
    /// A server whose ids have column type `key_type`, drawing every
    /// choice from `seed`, with `faults`.
    pub fn new(seed: u64, key_type: Type, faults: Faults) -> Arc<Server> {
        Arc::new(Server {
            state: Mutex::new(State {
                table: Table::new(key_type),
                rng: Rng::new(seed),
                faults,
                clock_offset: 0,
                silent_until: None,
                cut_off_until: BTreeMap::new(),
                recorders: 0,
                exhausted_until: None,
                down_until: None,
                locked: BTreeMap::new(),
                generation: 0,
                trace: VecDeque::new(),
                statements: 0,
            }),
            epoch: Instant::now(),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while the lock was held is the test's failure already.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The database clock now, in microseconds.
    pub fn now(&self) -> Micros {
        let state = self.state();
        self.clock(&state)
    }

    fn clock(&self, state: &State) -> Micros {
        Instant::now().duration_since(self.epoch).as_micros() as Micros + state.clock_offset
    }

    /// How far the database clock has been stepped, in all.
    pub fn clock_offset(&self) -> Micros {
        self.state().clock_offset
    }

    /// A copy of the table: its rows and its log of applied writes.
    pub fn table(&self) -> Table {
        self.state().table.clone()
    }

    /// A copy of the rows now (without the log).
    pub fn rows(&self) -> BTreeMap<Vec<u8>, Stored> {
        self.state().table.rows().clone()
    }

    /// The trace so far (its last lines), one event per line.
    pub fn trace(&self) -> Vec<String> {
        self.state().trace.iter().cloned().collect()
    }

    /// Statements received so far.
    pub fn statements(&self) -> u64 {
        self.state().statements
    }

    /// Writes `line` to the trace, stamped with the database clock.
    pub fn note(&self, line: impl std::fmt::Display) {
        let mut state = self.state();
        let at = self.clock(&state);
        push(&mut state.trace, format!("{:>9.3} {line}", at as f64 / 1e3));
    }

    /// From now on, strike statements with `faults`.
    pub fn set_faults(&self, faults: Faults) {
        self.note(format_args!("faults {faults:?}"));
        self.state().faults = faults;
    }

    /// Every fault ends: no more statement faults, partitions, exhausted
    /// pools, locked rows or downtime. (Statements already applying late
    /// still land.)
    pub fn heal(&self) {
        self.note("healed: no fault from now on");
        let mut state = self.state();
        state.faults = Faults::NONE;
        state.silent_until = None;
        state.cut_off_until.clear();
        state.exhausted_until = None;
        state.down_until = None;
        state.locked.clear();
    }

    /// No reply comes for `span` (a partition that neither answers nor
    /// resets): statements sent meanwhile apply or not, at random.
    pub fn silence(&self, span: Duration) {
        self.note(format_args!("silence for {span:?}"));
        self.state().silent_until = Some(Instant::now() + span);
    }

    /// No reply comes to the connections of recorder `recorder` (numbered
    /// from 0 in the order they were opened) for `span`: a partition
    /// between that replica and the database; the others go on.
    pub fn cut_off(&self, recorder: usize, span: Duration) {
        self.note(format_args!("recorder {recorder} cut off for {span:?}"));
        self.state()
            .cut_off_until
            .insert(recorder, Instant::now() + span);
    }

    /// No connection is handed out for `span`.
    pub fn exhaust_pools(&self, span: Duration) {
        self.note(format_args!("pools exhausted for {span:?}"));
        self.state().exhausted_until = Some(Instant::now() + span);
    }

    /// A frozen holder keeps the row of `key` (an id's binary key) locked
    /// for `span`: writes of it wait for the lock bound and fail, or skip it.
    pub fn lock_row(&self, key: Vec<u8>, span: Duration) {
        self.note(format_args!("row of {} locked for {span:?}", label(&key)));
        self.state().locked.insert(key, Instant::now() + span);
    }

    /// The database clock steps by `micros` (back, if negative).
    pub fn step_clock(&self, micros: Micros) {
        self.note(format_args!("clock steps {micros} µs"));
        self.state().clock_offset += micros;
    }

    /// The server crashes and is down for `down`: every statement in flight
    /// is lost (its connection resets), nothing committed is.
    pub fn crash(&self, down: Duration) {
        self.note(format_args!("crash, down for {down:?}"));
        let mut state = self.state();
        state.generation += 1;
        state.down_until = Some(Instant::now() + down);
        state.locked.clear();
    }

    /// From now on the finish statement matches the row whatever fence it
    /// carries: the known-bad finish without its fence guard.
    pub fn drop_finish_fence(&self) {
        self.note("the finish statement loses its fence guard");
        self.state().table.finish_ignores_fence = true;
    }

    /// From now on a read returns each row as it was before its latest
    /// write: the known-bad read of a stale copy.
    pub fn serve_stale_reads(&self) {
        self.note("reads return each row before its latest write");
        self.state().table.stale_reads = true;
    }

    /// A draw from the server's generator, for a driver that wants its
    /// choices in the same one sequence.
    pub fn draw(&self, n: u64) -> u64 {
        self.state().rng.below(n)
    }

    /// The connections of one recorder: `calls` and `renewals` of them.
    pub(crate) fn pools(
        self: &Arc<Server>,
        calls: usize,
        renewals: usize,
        lock_bound: Duration,
    ) -> Pools {
        let recorder = {
            let mut state = self.state();
            state.recorders += 1;
            state.recorders - 1
        };
        Pools {
            server: self.clone(),
            recorder,
            lock_bound,
            calls: Arc::new(Semaphore::new(calls.max(1))),
            renewals: Arc::new(Semaphore::new(renewals.max(1))),
            sizes: (calls.max(1), renewals.max(1)),
        }
    }

    /// The fate of a statement `which` arriving now.
    fn fate(&self, state: &mut State, which: Which) -> Fate {
        let f = state.faults;
        let writes = !matches!(
            which,
            Which::Read | Which::List | Which::PageFirst | Which::PageAfter | Which::Count
        );
        let rng = &mut state.rng;
        if rng.chance(f.reset_before) {
            return Fate::ResetBefore;
        }
        if rng.chance(f.silent_before) {
            return Fate::SilentBefore;
        }
        if rng.chance(f.slow) {
            return Fate::Slow(rng.up_to(f.slow_by));
        }
        if !writes {
            return Fate::Answer;
        }
        if rng.chance(f.reset_after) {
            return Fate::ResetAfter;
        }
        if rng.chance(f.silent_after) {
            return Fate::SilentAfter;
        }
        if rng.chance(f.late) {
            return Fate::Late(rng.up_to(f.late_by));
        }
        Fate::Answer
    }

    /// Applies `which` now, unless a crash came since `generation`.
    fn apply(
        &self,
        which: Which,
        params: &Params,
        generation: u64,
        n: u64,
    ) -> Result<Vec<Row>, Error> {
        let mut state = self.state();
        if state.generation != generation {
            push(
                &mut state.trace,
                format!("          #{n} {which:?} lost in a crash"),
            );
            return Err(reset());
        }
        let now = self.clock(&state);
        let at = Instant::now();
        let locked = state.locked.clone();
        let is_locked = |key: &[u8]| locked.get(key).is_some_and(|until| *until > at);
        let before = state.table.applied.len();
        let rows = state.table.apply(which, params, now, &is_locked);
        let changed = state.table.applied.len() > before;
        let line = match &rows {
            Ok(rows) if changed => format!("#{n} {which:?} applied, {} rows", rows.len()),
            Ok(rows) => format!("#{n} {which:?} matched nothing, {} rows", rows.len()),
            Err(e) => format!("#{n} {which:?} failed: {e}"),
        };
        push(
            &mut state.trace,
            format!("{:>9.3} {line}", now as f64 / 1e3),
        );
        rows
    }

    /// Runs `which` as the server would, with its fate: the rows, an error,
    /// or no reply at all (the future never resolves; the client's bound
    /// ends it). `lock_bound` is the session's lock timeout.
    async fn run(
        self: &Arc<Server>,
        which: Which,
        params: Params,
        recorder: usize,
        lock_bound: Duration,
    ) -> Result<Vec<Row>, Error> {
        let (fate, generation, n, locked_until) = {
            let mut state = self.state();
            state.statements += 1;
            let n = state.statements;
            let now = Instant::now();
            let silent = state.silent_until.is_some_and(|until| until > now)
                || state
                    .cut_off_until
                    .get(&recorder)
                    .is_some_and(|until| *until > now);
            let fate = match silent {
                // In a partition, a statement sent may or may not arrive.
                true if state.rng.chance(500) => Fate::SilentAfter,
                true => Fate::SilentBefore,
                false => self.fate(&mut state, which),
            };
            let key = params.raw(1).ok();
            let waits = !matches!(
                which,
                Which::Read
                    | Which::Abandon
                    | Which::Sweep
                    | Which::List
                    | Which::PageFirst
                    | Which::PageAfter
                    | Which::Count
            );
            let locked_until = key
                .clone()
                .and_then(|key| state.locked.get(&key).copied())
                .filter(|until| waits && *until > Instant::now());
            let at = self.clock(&state);
            let on = match &key {
                Some(key) => format!(" of {}", label(key)),
                None => String::new(),
            };
            push(
                &mut state.trace,
                format!("{:>9.3} #{n} {which:?}{on} sent: {fate:?}", at as f64 / 1e3),
            );
            (fate, state.generation, n, locked_until)
        };
        // A write of a locked row waits for the lock, up to the bound.
        if let Some(until) = locked_until {
            let bound = Instant::now() + lock_bound;
            tokio::time::sleep_until(until.min(bound)).await;
            if until > bound {
                self.note(format_args!("#{n} {which:?} waited past the lock bound"));
                return Err(Error::Simulated {
                    code: "55P03",
                    fatal: false,
                });
            }
        }
        match fate {
            Fate::Answer => self.apply(which, &params, generation, n),
            Fate::ResetBefore => Err(reset()),
            Fate::ResetAfter => {
                self.apply(which, &params, generation, n)?;
                Err(reset())
            }
            Fate::SilentBefore => std::future::pending().await,
            Fate::SilentAfter => {
                let _ = self.apply(which, &params, generation, n);
                std::future::pending().await
            }
            Fate::Late(by) => {
                let server = self.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(by).await;
                    let _ = server.apply(which, &params, generation, n);
                });
                Err(reset())
            }
            Fate::Slow(by) => {
                let rows = self.apply(which, &params, generation, n);
                tokio::time::sleep(by).await;
                if self.state().generation != generation {
                    return Err(reset());
                }
                rows
            }
        }
    }
}

/// An id's binary key as the trace shows it: a `bigint` as its number,
/// anything else as its bytes.
fn label(key: &[u8]) -> String {
    match <[u8; 8]>::try_from(key) {
        Ok(bytes) => i64::from_be_bytes(bytes).to_string(),
        Err(_) => format!("{key:02x?}"),
    }
}

fn push(trace: &mut VecDeque<String>, line: String) {
    if trace.len() == TRACE_LINES {
        trace.pop_front();
    }
    trace.push_back(line);
}

/// The error of a connection that reset under a statement.
fn reset() -> Error {
    Error::Simulated {
        code: "08006",
        fatal: true,
    }
}

/// One recorder's pools of connections to the server.
pub(crate) struct Pools {
    server: Arc<Server>,
    /// Which recorder these pools serve.
    recorder: usize,
    /// The sessions' lock timeout.
    lock_bound: Duration,
    calls: Arc<Semaphore>,
    renewals: Arc<Semaphore>,
    sizes: (usize, usize),
}

impl Pools {
    /// The size of `pool`.
    pub(crate) fn pool_size(&self, pool: PoolOf) -> usize {
        match pool {
            PoolOf::Calls => self.sizes.0,
            PoolOf::Renewals => self.sizes.1,
        }
    }

    /// A connection of `pool`: none while the server is down (a definite
    /// error: nothing was sent), none while the pools are exhausted (the
    /// caller's connection bound ends the wait).
    pub(crate) async fn connection(&self, pool: PoolOf) -> Result<Connection, Error> {
        let (down, exhausted) = {
            let state = self.server.state();
            (state.down_until, state.exhausted_until)
        };
        let now = Instant::now();
        if down.is_some_and(|until| until > now) {
            return Err(Error::Pool("the simulated server is restarting".into()));
        }
        if let Some(until) = exhausted.filter(|until| *until > now) {
            tokio::time::sleep_until(until).await;
        }
        let semaphore = match pool {
            PoolOf::Calls => &self.calls,
            PoolOf::Renewals => &self.renewals,
        };
        let permit = semaphore
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::Pool("the simulated pool closed".into()))?;
        Ok(Connection {
            server: self.server.clone(),
            recorder: self.recorder,
            _permit: permit,
            lock_bound: self.lock_bound,
        })
    }
}

/// A connection to the simulated server.
pub(crate) struct Connection {
    server: Arc<Server>,
    recorder: usize,
    _permit: OwnedSemaphorePermit,
    lock_bound: Duration,
}

impl Connection {
    /// Runs statement `which` with `params` of `types`.
    pub(crate) async fn query(
        &self,
        which: Which,
        types: &[Type],
        params: &[Param<'_>],
    ) -> Result<Vec<Row>, Error> {
        let params = Params::encode(types, params)?;
        self.server
            .run(which, params, self.recorder, self.lock_bound)
            .await
    }

    /// Closes the connection for good.
    pub(crate) fn discard(self) {}
}
