//! The `async_tasks_recorder` semantics on PostgreSQL: several replicas
//! share one durable record, and a worker whose lease lapsed while it was
//! paused cannot complete over the attempt that replaced it.
//!
//! # Model
//! Each id is one row. Every operation is **one autocommit statement under
//! READ COMMITTED with every guard inside it** (`src/sql.rs`): the row lock
//! that statement takes is its linearization point, and READ COMMITTED
//! re-evaluates the `WHERE` on the locked, latest row version
//! (proofs/P10-pg-linearizable.md). The transitions are those of
//! [`spec::fenced_step`](async_tasks_recorder::spec::fenced_step), the same
//! [`spec::step`](async_tasks_recorder::spec::step) the in-memory recorder runs:
//!
//! - **claim** (launch): `INSERT … ON CONFLICT (id) DO UPDATE … WHERE` the row
//!   is `NotFound`, `Failed`, or `Working` with its lease run out by the
//!   database clock; it draws a new **fence** from a global sequence and
//!   leases the row until `clock_timestamp() + lease`.
//! - **renew** and **finish**: `UPDATE … WHERE id = $1 AND state = working
//!   AND fence = $2`. A finish that matches no row is [`Finish::Stale`]:
//!   the caller was a zombie, nothing changed (proofs/P11-pg-fencing.md).
//! - **revoke**: begin (`Success` to `Revoking`, new fence), then end or
//!   abort, fenced the same way. A completed revoke keeps the row as
//!   `NotFound` with `epoch + 1`, so `(id, epoch)` never repeats.
//! - **sweep**: any replica may run it, as often as it likes: lapsed
//!   `Working` rows become `Failed`, lapsed `Revoking` rows `Success`.
//!   Expiry is always such a write; a read reports the stored state, never
//!   a state computed from the clock (a reader could otherwise see `Failed`
//!   and then a late `Success`).
//!
//! Time is the database's `clock_timestamp()` only; a replica's clock never
//! decides whether a lease has run out.
//!
//! # The task's lease
//! A task receives its [`Lease`]: `(id, epoch, fence)`. While it runs, the
//! lease is renewed in the background every `lease / 3`. If a renewal is
//! refused (the fence is no longer current: the lease ran out and the sweep
//! or another replica took the id over), or no renewal was acknowledged for
//! a whole lease period, the lease is marked **lost**: [`Lease::is_lost`]
//! turns true and [`Lease::lost`] resolves. The task is not aborted (an
//! abort in the middle of a side effect is worse); it should check before
//! each irreversible step. Its finish then answers [`Finish::Stale`].
//!
//! # Fenced side effects
//! - Effects in the same database: [`Attempt::finish_in`] runs the fenced
//!   finish inside the caller's transaction; commit only if it answered
//!   [`Finish::Applied`]. The writes and the success commit together or not
//!   at all: exactly once per epoch.
//! - An external store that supports conditional writes: store the fence
//!   with the data and write only `if stored_fence < my_fence`; a zombie's
//!   older fence is then refused by the store itself.
//! - An API that only takes idempotency keys: use `(id, epoch)`. Only one
//!   attempt per epoch can succeed, and a retried attempt of the same epoch
//!   sends the same key, so the API deduplicates it.
//!
//! # Why tokio-postgres and deadpool-postgres
//! tokio-postgres pipelines statements on one connection, a dropped query
//! future leaves the connection usable (the protocol state is tracked by
//! the connection task, not by the future), and no database is needed at
//! compile time. sqlx has open reports of a cancelled `begin` leaving a
//! pooled connection inside a transaction, which would hold a fenced row
//! lock for an unrelated caller. deadpool-postgres adds a small pool with a
//! per-connection prepared-statement cache.
//!
//! # Limits
//! - One primary, `synchronous_commit = on` (the default; [`cluster`] sets
//!   it). A fence is only as monotone as the commit log: with
//!   `synchronous_commit = off`, or after failover to an asynchronous
//!   replica, an acknowledged claim or finish can be lost and the same
//!   fence issued again. Failover needs synchronous replication.
//! - Connection loss: reads, listings, counts and the sweep are retried on
//!   fresh connections; a finish is resolved by re-reading its row; a claim
//!   or a revoke begin that fails in transit returns the error, and if it
//!   had in fact committed, the id stays `Working` (or `Revoking`) until its
//!   unrenewed lease runs out and the sweep or `wait` expires it.
//! - `wait` polls (see [`PgRecorder::wait`]); listing and counting read an
//!   index in one statement, so their cost grows with the rows listed.

#![warn(missing_docs)]

pub mod cluster;
mod sql;

#[doc(hidden)]
pub use sql::{KnownBad, Statements, phase_of, state_code, state_codes};

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, SystemTime};
use tokio_postgres::types::{FromSqlOwned, ToSql, Type};
use tokio_postgres::{NoTls, Row, Transaction};
use tokio_util::sync::CancellationToken;

pub use async_tasks_recorder::spec::{Epoch, Fence, Outcome, Phase, TaskState};

/// A type usable as a task id: a column type and its Rust mapping.
pub trait Key: ToSql + FromSqlOwned + Clone + Send + Sync + std::fmt::Debug + 'static {
    /// The SQL type of the id column.
    const SQL_TYPE: &'static str;
    /// The client-side type of the id parameter.
    fn pg_type() -> Type;
}

impl Key for String {
    const SQL_TYPE: &'static str = "text";
    fn pg_type() -> Type {
        Type::TEXT
    }
}

impl Key for i64 {
    const SQL_TYPE: &'static str = "bigint";
    fn pg_type() -> Type {
        Type::INT8
    }
}

/// Errors are values: connection loss, a refused statement, bad input.
#[derive(Debug)]
pub enum Error {
    /// The pool could not hand out a connection.
    Pool(String),
    /// A statement failed. The server rolled it back (an autocommit
    /// statement either commits whole or not at all), unless it was a
    /// finish, whose in-doubt outcome is resolved by re-reading the row.
    Db(tokio_postgres::Error),
    /// The table name is not a plain lower-case identifier.
    BadTableName(String),
    /// A lease or interval out of range.
    BadDuration(Duration),
    /// A finish whose outcome could not be resolved: the connection failed
    /// after sending it, and by the time the row could be re-read the id
    /// had been revoked and succeeded again in a later epoch.
    InDoubt,
    /// The id changed state on every one of many retries of a claim or
    /// revoke; nothing was changed by this call.
    Contended,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Pool(e) => write!(f, "no database connection: {e}"),
            Error::Db(e) => write!(f, "database error: {e}"),
            Error::BadTableName(name) => write!(
                f,
                "table name {name:?} is not a lower-case identifier of at most 50 characters"
            ),
            Error::BadDuration(d) => write!(f, "duration {d:?} out of range"),
            Error::InDoubt => write!(f, "finish outcome in doubt: the id moved to a later epoch"),
            Error::Contended => write!(f, "the id changed state on every retry"),
        }
    }
}

impl std::error::Error for Error {}

impl From<tokio_postgres::Error> for Error {
    fn from(e: tokio_postgres::Error) -> Self {
        Error::Db(e)
    }
}

impl From<deadpool_postgres::PoolError> for Error {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        match e {
            deadpool_postgres::PoolError::Backend(e) => Error::Db(e),
            e => Error::Pool(e.to_string()),
        }
    }
}

/// What a fenced finish did.
#[derive(Clone, Copy, Debug, Eq, PartialEq, Hash)]
pub enum Finish {
    /// The fence was current: the id is now `Success` or `Failed`.
    Applied,
    /// The fence was not current (the lease ran out and the id was expired
    /// or taken over), or this attempt was already finished: nothing
    /// changed. An `Err` finish whose row has since moved on also reads
    /// `Stale`: either way the attempt ended without success.
    Stale,
}

/// Why a launch or a revoke did not run its future.
#[derive(Debug)]
pub enum Refused {
    /// Refused by the id's state: `Working` or `Success` for a launch,
    /// `NotSuccess` / revoke running for a revoke (see [`RevokeRefused`]).
    State(TaskState),
    /// A revoke refusal.
    Revoke(RevokeRefused),
    /// The database could not be asked.
    Error(Error),
}

/// Why a revoke was refused.
#[derive(Clone, Copy, Debug, Eq, PartialEq, Hash)]
pub enum RevokeRefused {
    /// The id is not `Success`.
    NotSuccess,
    /// Another revoke of the id is running.
    Revoking,
}

/// The stored record of one id, as the read statement returns it.
#[derive(Clone, Copy, Debug, Eq, PartialEq, Hash)]
pub struct Stored {
    /// The stored phase.
    pub phase: Phase,
    /// Completed revokes.
    pub epoch: Epoch,
    /// The latest fence issued for the id (0 for an absent row).
    pub fence: Fence,
    /// The fence of the attempt that made the latest success.
    pub success_fence: Option<Fence>,
    /// The lease has run out by the database clock (not yet swept).
    pub lapsed: bool,
}

/// Settings of a recorder.
#[derive(Clone, Debug)]
pub struct Config {
    /// How long a claim holds the id without a renewal. Default 30 s.
    pub lease: Duration,
    /// Longest pause between two polls of [`PgRecorder::wait`]; the first
    /// polls come after 1 ms and double up to this. Default 50 ms.
    pub wait_poll_max: Duration,
    /// Connections in the pool. Default 16.
    pub pool_size: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            lease: Duration::from_secs(30),
            wait_poll_max: Duration::from_millis(50),
            pool_size: 16,
        }
    }
}

/// The recorder on one PostgreSQL table. Clones share one pool.
pub struct PgRecorder<K> {
    inner: Arc<Inner>,
    _key: std::marker::PhantomData<fn(K) -> K>,
}

impl<K> Clone for PgRecorder<K> {
    fn clone(&self) -> Self {
        PgRecorder {
            inner: self.inner.clone(),
            _key: std::marker::PhantomData,
        }
    }
}

struct Inner {
    pool: Pool,
    sql: Statements,
    key_type: Type,
    lease_micros: i64,
    wait_poll_max: Duration,
    /// Test hook: microseconds added to the database clock in every statement.
    shift_micros: AtomicI64,
    /// Test hook: when false, leases are not renewed, as if this replica's
    /// process were paused (a GC pause, SIGSTOP) while its tasks run.
    renewing: AtomicBool,
    /// Test hook: microseconds added to this replica's clock, which only a
    /// known-bad claim statement reads.
    client_skew_micros: AtomicI64,
}

fn micros(d: Duration) -> Result<i64, Error> {
    i64::try_from(d.as_micros())
        .ok()
        .filter(|&m| m > 0)
        .ok_or(Error::BadDuration(d))
}

impl<K: Key> PgRecorder<K> {
    /// A recorder on table `table` of the database `config` names, with its
    /// own pool. Call [`install`](Self::install) once to create the table.
    pub fn new(
        config: tokio_postgres::Config,
        table: &str,
        settings: Config,
    ) -> Result<Self, Error> {
        if !sql::is_identifier(table) {
            return Err(Error::BadTableName(table.into()));
        }
        Self::with_statements(config, Statements::new(table, K::SQL_TYPE), settings)
    }

    /// Like [`new`](Self::new) with given statements: tests swap in a
    /// known-bad one to show that their checks catch it.
    #[doc(hidden)]
    pub fn with_statements(
        config: tokio_postgres::Config,
        sql: Statements,
        settings: Config,
    ) -> Result<Self, Error> {
        let lease_micros = micros(settings.lease)?;
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(settings.pool_size.max(1))
            .build()
            .map_err(|e| Error::Pool(e.to_string()))?;
        Ok(PgRecorder {
            inner: Arc::new(Inner {
                pool,
                sql,
                key_type: K::pg_type(),
                lease_micros,
                wait_poll_max: settings.wait_poll_max.max(Duration::from_millis(1)),
                shift_micros: AtomicI64::new(0),
                client_skew_micros: AtomicI64::new(0),
                renewing: AtomicBool::new(true),
            }),
            _key: std::marker::PhantomData,
        })
    }

    /// Creates the table, its indexes and its fence sequence if absent.
    pub async fn install(&self) -> Result<(), Error> {
        let client = self.inner.pool.get().await?;
        client.batch_execute(&self.inner.sql.schema).await?;
        Ok(())
    }

    /// Test hook: this recorder judges leases as if `by` had passed on the
    /// database clock (server side); the leases it grants are not moved.
    #[doc(hidden)]
    pub fn shift_clock(&self, by: Duration) {
        let by = i64::try_from(by.as_micros()).unwrap_or(i64::MAX);
        self.inner.shift_micros.store(by, Ordering::Relaxed);
    }

    /// Test hook: this replica's own clock runs `by` ahead. No correct
    /// statement reads it; a known-bad claim does.
    #[doc(hidden)]
    pub fn skew_client_clock(&self, by: Duration) {
        let by = i64::try_from(by.as_micros()).unwrap_or(i64::MAX);
        self.inner.client_skew_micros.store(by, Ordering::Relaxed);
    }

    /// Test hook: stop (or resume) renewing leases, as a paused process would.
    #[doc(hidden)]
    pub fn set_renewing(&self, on: bool) {
        self.inner.renewing.store(on, Ordering::Relaxed);
    }

    fn shift(&self) -> i64 {
        self.inner.shift_micros.load(Ordering::Relaxed)
    }

    async fn run(
        &self,
        sql: &str,
        types: &[Type],
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, Error> {
        let client = self.inner.pool.get().await?;
        let statement = client.prepare_typed_cached(sql, types).await?;
        Ok(client.query(&statement, params).await?)
    }

    /// [`run`](Self::run) for a statement that may safely run twice (a
    /// read, the sweep, an expiry): after a connection that broke (the
    /// server restarted, the network cut it), it is retried on another
    /// pooled connection, as many times as the pool has connections, since
    /// each of them may have broken at once. A server that refused the
    /// statement (a database error) is not retried.
    async fn run_idempotent(
        &self,
        sql: &str,
        types: &[Type],
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, Error> {
        let mut tries = self.inner.pool.status().max_size + 1;
        loop {
            match self.run(sql, types, params).await {
                Err(Error::Db(e)) if e.as_db_error().is_none() && tries > 1 => tries -= 1,
                Err(Error::Db(e))
                    if e.as_db_error().is_some_and(|db| db.severity() == "FATAL") && tries > 1 =>
                {
                    tries -= 1
                }
                done => return done,
            }
        }
    }

    /// The stored record of `id` (what every read reports).
    pub async fn read(&self, id: &K) -> Result<Stored, Error> {
        let rows = self
            .run_idempotent(
                &self.inner.sql.read,
                &[self.inner.key_type.clone(), Type::INT8],
                &[id, &self.shift()],
            )
            .await?;
        Ok(rows.first().map(stored).unwrap_or(Stored {
            phase: Phase::NotFound,
            epoch: 0,
            fence: 0,
            success_fence: None,
            lapsed: false,
        }))
    }

    /// The id's state: one read of its row.
    pub async fn query(&self, id: &K) -> Result<TaskState, Error> {
        Ok(self.read(id).await?.phase.state())
    }

    /// Claims `id`: the id becomes `Working` under a new fence, or the
    /// claim is refused with `Working` or `Success`.
    ///
    /// A refusal is decided by a fresh read after the guarded claim matched
    /// nothing; if that read shows a launchable row (the holder finished or
    /// its lease ran out in between), the claim is retried.
    pub async fn claim(&self, id: K) -> Result<Result<Attempt<K>, TaskState>, Error> {
        let types = [
            self.inner.key_type.clone(),
            Type::INT8,
            Type::INT8,
            Type::TIMESTAMPTZ,
        ];
        for _ in 0..64 {
            let skew = self.inner.client_skew_micros.load(Ordering::Relaxed);
            let client_now = SystemTime::now() + Duration::from_micros(skew.max(0) as u64);
            let rows = self
                .run(
                    &self.inner.sql.claim,
                    &types,
                    &[&id, &self.inner.lease_micros, &self.shift(), &client_now],
                )
                .await?;
            if let Some(row) = rows.first() {
                let fence: i64 = row.try_get(0)?;
                let epoch: i64 = row.try_get(1)?;
                return Ok(Ok(self.attempt(
                    id,
                    epoch as Epoch,
                    fence as Fence,
                    Holding::Work,
                )));
            }
            let now = self.read(&id).await?;
            match now.phase {
                Phase::Working if !now.lapsed => return Ok(Err(TaskState::Working)),
                Phase::Success | Phase::Revoking => return Ok(Err(TaskState::Success)),
                _ => continue,
            }
        }
        Err(Error::Contended)
    }

    fn attempt(&self, id: K, epoch: Epoch, fence: Fence, holding: Holding) -> Attempt<K> {
        let lease = Lease {
            inner: Arc::new(LeaseInner {
                id,
                epoch,
                fence,
                lost: CancellationToken::new(),
                settled: AtomicBool::new(false),
            }),
        };
        let stop = CancellationToken::new();
        tokio::spawn(renew_loop(
            self.clone(),
            lease.clone(),
            holding,
            stop.clone(),
        ));
        Attempt {
            recorder: self.clone(),
            lease,
            holding,
            stop_renewal: stop,
        }
    }

    async fn renew(&self, lease: &Lease<K>) -> Result<bool, Error> {
        let rows = self
            .run(
                &self.inner.sql.renew,
                &[
                    self.inner.key_type.clone(),
                    Type::INT8,
                    Type::INT8,
                    Type::INT8,
                ],
                &[
                    lease.id(),
                    &(lease.fence() as i64),
                    &self.inner.lease_micros,
                    &self.shift(),
                ],
            )
            .await?;
        Ok(!rows.is_empty())
    }

    /// Starts `task` under `id` on the current runtime: `Ok(lease)` if the
    /// claim was granted (the task runs, its output decides the finish),
    /// `Err(Refused::State(Working | Success))` if not.
    pub async fn launch<F, Fut, R, E>(&self, id: K, task: F) -> Result<Lease<K>, Refused>
    where
        F: FnOnce(Lease<K>) -> Fut,
        Fut: Future<Output = Result<R, E>> + Send + 'static,
    {
        let attempt = match self.claim(id).await {
            Ok(Ok(attempt)) => attempt,
            Ok(Err(state)) => return Err(Refused::State(state)),
            Err(e) => return Err(Refused::Error(e)),
        };
        let lease = attempt.lease().clone();
        let future = task(lease.clone());
        tokio::spawn(async move {
            let outcome = Outcome::of(&future.await);
            let _ = attempt.finish(outcome).await;
        });
        Ok(lease)
    }

    /// Runs `task` under `id` in place: its output and what its fenced
    /// finish did. Refuses as [`launch`](Self::launch) does.
    pub async fn launch_block<F, Fut, R, E>(
        &self,
        id: K,
        task: F,
    ) -> Result<(Result<R, E>, Result<Finish, Error>), Refused>
    where
        F: FnOnce(Lease<K>) -> Fut,
        Fut: Future<Output = Result<R, E>>,
    {
        let attempt = match self.claim(id).await {
            Ok(Ok(attempt)) => attempt,
            Ok(Err(state)) => return Err(Refused::State(state)),
            Err(e) => return Err(Refused::Error(e)),
        };
        Ok(attempt.run(task).await)
    }

    /// Begins a revoke of a succeeded `id`: the id becomes `Revoking` under
    /// a new fence (it still reads `Success`).
    pub async fn revoke_begin(&self, id: K) -> Result<Result<Attempt<K>, RevokeRefused>, Error> {
        let types = [self.inner.key_type.clone(), Type::INT8, Type::INT8];
        for _ in 0..64 {
            let rows = self
                .run(
                    &self.inner.sql.revoke_begin,
                    &types,
                    &[&id, &self.inner.lease_micros, &self.shift()],
                )
                .await?;
            if let Some(row) = rows.first() {
                let fence: i64 = row.try_get(0)?;
                let epoch: i64 = row.try_get(1)?;
                return Ok(Ok(self.attempt(
                    id,
                    epoch as Epoch,
                    fence as Fence,
                    Holding::Revoke,
                )));
            }
            let now = self.read(&id).await?;
            match now.phase {
                Phase::Revoking if !now.lapsed => return Ok(Err(RevokeRefused::Revoking)),
                Phase::NotFound | Phase::Working | Phase::Failed => {
                    return Ok(Err(RevokeRefused::NotSuccess));
                }
                _ => continue,
            }
        }
        Err(Error::Contended)
    }

    /// Runs `revoke` to undo the success of `id`: `Ok` ends the epoch (the
    /// id becomes `NotFound`, epoch + 1), `Err` leaves it `Success`.
    pub async fn revoke<F, Fut, R, E>(
        &self,
        id: K,
        revoke: F,
    ) -> Result<(Result<R, E>, Result<Finish, Error>), Refused>
    where
        F: FnOnce(Lease<K>) -> Fut,
        Fut: Future<Output = Result<R, E>>,
    {
        let attempt = match self.revoke_begin(id).await {
            Ok(Ok(attempt)) => attempt,
            Ok(Err(refused)) => return Err(Refused::Revoke(refused)),
            Err(e) => return Err(Refused::Error(e)),
        };
        Ok(attempt.run(revoke).await)
    }

    /// Resolves once `id` is not `Working`, with its state then.
    ///
    /// Polls the row, after 1 ms, then at doubling intervals up to
    /// `Config::wait_poll_max` (50 ms by default): a finish is seen at most
    /// that long after it commits. No wake-up can be lost, since every poll
    /// reads the committed row. A `Working` row whose lease has run out is
    /// expired by this call (a write, as the sweep does), so a dead holder
    /// delays `wait` by at most its lease.
    pub async fn wait(&self, id: &K) -> Result<TaskState, Error> {
        let mut pause = Duration::from_millis(1);
        loop {
            let now = self.read(id).await?;
            if now.phase.state() != TaskState::Working {
                return Ok(now.phase.state());
            }
            if now.lapsed {
                self.run_idempotent(
                    &self.inner.sql.expire_one,
                    &[self.inner.key_type.clone(), Type::INT8],
                    &[id, &self.shift()],
                )
                .await?;
                continue;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(self.inner.wait_poll_max);
        }
    }

    /// The sweep: moves up to `limit` lapsed rows (`Working` to `Failed`,
    /// `Revoking` to `Success`) and returns them with their new state.
    /// Idempotent; any replica may run it at any time. A row that another
    /// statement holds at that moment (being finished, claimed or renewed)
    /// is skipped, not waited for (`SKIP LOCKED`); the next sweep takes it
    /// if it is still lapsed.
    pub async fn sweep(&self, limit: i64) -> Result<Vec<(K, TaskState)>, Error> {
        let rows = self
            .run_idempotent(
                &self.inner.sql.sweep,
                &[Type::INT8, Type::INT8],
                &[&self.shift(), &limit],
            )
            .await?;
        rows.iter()
            .map(|row| {
                let state: i16 = row.try_get(1)?;
                Ok((row.try_get(0)?, phase_of(state).state()))
            })
            .collect()
    }

    /// Ids now in `state` (none for `NotFound`), through the `(state, id)` index.
    pub async fn list(&self, state: TaskState) -> Result<Vec<K>, Error> {
        if state == TaskState::NotFound {
            return Ok(Vec::new());
        }
        // The statement takes two codes: one phase is passed twice.
        let phases: Vec<i16> = sql::phases_read_as(state).map(state_code).collect();
        let (Some(&first), Some(&last)) = (phases.first(), phases.last()) else {
            return Ok(Vec::new());
        };
        let rows = self
            .run_idempotent(
                &self.inner.sql.list,
                &[Type::INT2, Type::INT2],
                &[&first, &last],
            )
            .await?;
        rows.iter().map(|row| Ok(row.try_get(0)?)).collect()
    }

    /// How many ids are in `state` (0 for `NotFound`).
    pub async fn count(&self, state: TaskState) -> Result<u64, Error> {
        let rows = self.run_idempotent(&self.inner.sql.count, &[], &[]).await?;
        let mut total = 0;
        for row in &rows {
            let phase = phase_of(row.try_get(0)?);
            let n: i64 = row.try_get(1)?;
            if phase != Phase::NotFound && phase.state() == state {
                total += n as u64;
            }
        }
        Ok(total)
    }

    /// The fenced finish statement; `Ok(true)` if it matched the row.
    async fn finish_statement(
        &self,
        lease: &Lease<K>,
        holding: Holding,
        outcome: Outcome,
        tx: Option<&Transaction<'_>>,
    ) -> Result<bool, Error> {
        let fence = lease.fence() as i64;
        let finished = match outcome {
            Outcome::Ok => Phase::Success,
            Outcome::Err => Phase::Failed,
        };
        let state = state_code(finished);
        let ok = outcome == Outcome::Ok;
        let (sql, second, value): (&str, Type, &(dyn ToSql + Sync)) = match holding {
            Holding::Work => (&self.inner.sql.finish, Type::INT2, &state),
            Holding::Revoke => (&self.inner.sql.revoke_end, Type::BOOL, &ok),
        };
        let types = [self.inner.key_type.clone(), Type::INT8, second];
        let params: [&(dyn ToSql + Sync); 3] = [lease.id(), &fence, value];
        let rows = match tx {
            Some(tx) => {
                let statement = tx.prepare_typed(sql, &types).await?;
                tx.query(&statement, &params).await?
            }
            None => {
                let client = self.inner.pool.get().await?;
                let statement = client.prepare_typed_cached(sql, &types).await?;
                client.query(&statement, &params).await?
            }
        };
        Ok(!rows.is_empty())
    }

    /// Test hook: what re-reading the row says of a finish by `lease` with
    /// `outcome` (of a revoke if `revoke`): `None` if it has not been
    /// applied and could be sent again.
    #[doc(hidden)]
    pub async fn resolve_finish(
        &self,
        lease: &Lease<K>,
        revoke: bool,
        outcome: Outcome,
    ) -> Result<Option<Finish>, Error> {
        let holding = if revoke {
            Holding::Revoke
        } else {
            Holding::Work
        };
        self.resolve(lease, holding, outcome).await
    }

    /// Resolves a finish whose statement failed in transit by reading the
    /// row with the finisher's fence (see `Attempt::finish`).
    async fn resolve(
        &self,
        lease: &Lease<K>,
        holding: Holding,
        outcome: Outcome,
    ) -> Result<Option<Finish>, Error> {
        let now = self.read(lease.id()).await?;
        let mine = lease.fence();
        let applied = match (holding, outcome) {
            (Holding::Work, _) if now.fence == mine && now.phase == Phase::Working => {
                return Ok(None);
            }
            (Holding::Revoke, _) if now.fence == mine && now.phase == Phase::Revoking => {
                return Ok(None);
            }
            (Holding::Work, Outcome::Ok) => {
                if now.success_fence == Some(mine) {
                    true
                } else if now.epoch == lease.epoch() {
                    false
                } else {
                    return Err(Error::InDoubt);
                }
            }
            (Holding::Work, Outcome::Err) => now.fence == mine && now.phase == Phase::Failed,
            (Holding::Revoke, Outcome::Ok) => now.epoch > lease.epoch(),
            (Holding::Revoke, Outcome::Err) => now.fence == mine && now.phase == Phase::Success,
        };
        Ok(Some(if applied {
            Finish::Applied
        } else {
            Finish::Stale
        }))
    }
}

fn stored(row: &Row) -> Stored {
    let state: i16 = row.get(0);
    let epoch: i64 = row.get(1);
    let fence: i64 = row.get(2);
    let success_fence: Option<i64> = row.get(3);
    Stored {
        phase: phase_of(state),
        epoch: epoch as Epoch,
        fence: fence as Fence,
        success_fence: success_fence.map(|f| f as Fence),
        lapsed: row.get(4),
    }
}

/// What an [`Attempt`] holds: a launch's `Working` or a revoke's `Revoking`.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
enum Holding {
    Work,
    Revoke,
}

/// The token a task runs under: `(id, epoch, fence)`, and whether the
/// lease was lost. Clones share the lost flag.
pub struct Lease<K> {
    inner: Arc<LeaseInner<K>>,
}

impl<K> Clone for Lease<K> {
    fn clone(&self) -> Self {
        Lease {
            inner: self.inner.clone(),
        }
    }
}

impl<K: std::fmt::Debug> std::fmt::Debug for Lease<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("id", &self.inner.id)
            .field("epoch", &self.inner.epoch)
            .field("fence", &self.inner.fence)
            .field("lost", &self.is_lost())
            .finish()
    }
}

struct LeaseInner<K> {
    id: K,
    epoch: Epoch,
    fence: Fence,
    lost: CancellationToken,
    settled: AtomicBool,
}

impl<K> Lease<K> {
    /// The task id.
    pub fn id(&self) -> &K {
        &self.inner.id
    }
    /// The revoke epoch the attempt runs in: `(id, epoch)` is an idempotency key.
    pub fn epoch(&self) -> Epoch {
        self.inner.epoch
    }
    /// The fencing token: greater than every token issued for this id before.
    pub fn fence(&self) -> Fence {
        self.inner.fence
    }
    /// Whether a renewal was refused or none was acknowledged within a
    /// lease period: the finish will likely be `Stale`.
    pub fn is_lost(&self) -> bool {
        self.inner.lost.is_cancelled()
    }
    /// Resolves when the lease is lost.
    pub async fn lost(&self) {
        self.inner.lost.cancelled().await
    }
}

/// An accepted claim or revoke: its lease is renewed in the background
/// until it is finished or dropped. Dropping it unfinished finishes it with
/// `Err` in the background (if a runtime is running), so the id does not
/// wait for its lease to run out.
pub struct Attempt<K: Key> {
    recorder: PgRecorder<K>,
    lease: Lease<K>,
    holding: Holding,
    stop_renewal: CancellationToken,
}

impl<K: Key> Attempt<K> {
    /// The lease to hand to the task.
    pub fn lease(&self) -> &Lease<K> {
        &self.lease
    }

    /// Runs `body` in place with this attempt's lease, then finishes the
    /// attempt with its output's outcome: the tail that a launch and a
    /// revoke run in place share once their claim is granted.
    async fn run<F, Fut, R, E>(self, body: F) -> (Result<R, E>, Result<Finish, Error>)
    where
        F: FnOnce(Lease<K>) -> Fut,
        Fut: Future<Output = Result<R, E>>,
    {
        let output = body(self.lease.clone()).await;
        let finish = self.finish(Outcome::of(&output)).await;
        (output, finish)
    }

    fn take(&self) -> bool {
        self.stop_renewal.cancel();
        !self.lease.inner.settled.swap(true, Ordering::AcqRel)
    }

    /// The fenced finish: `Applied` if this attempt's fence was still
    /// current, `Stale` if not.
    ///
    /// If the connection fails after the statement may have been sent, the
    /// row is re-read with this fence to learn whether it committed (and
    /// the finish is sent again if it did not), up to five tries.
    pub async fn finish(self, outcome: Outcome) -> Result<Finish, Error> {
        if !self.take() {
            return Ok(Finish::Stale);
        }
        let recorder = &self.recorder;
        let mut last = None;
        for attempt in 0..5u32 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(20 << attempt)).await;
                match recorder.resolve(&self.lease, self.holding, outcome).await {
                    Ok(Some(done)) => return Ok(done),
                    Ok(None) => {}
                    Err(Error::InDoubt) => return Err(Error::InDoubt),
                    Err(e) => {
                        last = Some(e);
                        continue;
                    }
                }
            }
            match recorder
                .finish_statement(&self.lease, self.holding, outcome, None)
                .await
            {
                Ok(true) => return Ok(Finish::Applied),
                Ok(false) => return Ok(Finish::Stale),
                // The server refused the statement with an ERROR: the
                // autocommit statement rolled back. (A FATAL ends the
                // session: in doubt like an I/O error.)
                Err(Error::Db(e)) if e.as_db_error().is_some_and(|db| db.severity() == "ERROR") => {
                    return Err(Error::Db(e));
                }
                // Connection trouble: the statement may or may not have
                // committed; the next round re-reads the row.
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or(Error::InDoubt))
    }

    /// The fenced finish inside the caller's transaction `tx`, so the
    /// task's own writes in `tx` commit with it. Commit `tx` only on
    /// `Applied`; on `Stale`, roll it back. The row stays locked by `tx`
    /// until it ends, so competing claims wait for the outcome.
    ///
    /// A process that freezes before it ends `tx` (a stop signal, a long
    /// pause, a lost network) therefore blocks every claim of the id for as
    /// long as the server keeps its session. Give the connection of `tx`
    /// [`end_idle_transactions`] of about one lease: the server then ends
    /// the frozen session, the finish and the writes roll back together,
    /// and the id is taken over once its lease has run out.
    pub async fn finish_in(self, tx: &Transaction<'_>, outcome: Outcome) -> Result<Finish, Error> {
        if !self.take() {
            return Ok(Finish::Stale);
        }
        let applied = self
            .recorder
            .finish_statement(&self.lease, self.holding, outcome, Some(tx))
            .await?;
        Ok(if applied {
            Finish::Applied
        } else {
            Finish::Stale
        })
    }
}

/// Makes the server end a session of `config` that stays idle inside a
/// transaction for `after` (PostgreSQL's
/// `idle_in_transaction_session_timeout`), keeping the options already set.
/// `after` is rounded up to 1 ms, since 0 would turn the timeout off, and
/// capped at the setting's largest value. See [`Attempt::finish_in`].
pub fn end_idle_transactions(
    config: &mut tokio_postgres::Config,
    after: Duration,
) -> &mut tokio_postgres::Config {
    let millis = after.as_millis().clamp(1, i32::MAX as u128);
    let setting = format!("-c idle_in_transaction_session_timeout={millis}");
    let options = match config.get_options() {
        Some(set) if !set.trim().is_empty() => format!("{set} {setting}"),
        _ => setting,
    };
    config.options(options)
}

impl<K: Key> Drop for Attempt<K> {
    fn drop(&mut self) {
        if !self.take() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let recorder = self.recorder.clone();
        let lease = self.lease.clone();
        let holding = self.holding;
        runtime.spawn(async move {
            let _ = recorder
                .finish_statement(&lease, holding, Outcome::Err, None)
                .await;
        });
    }
}

/// Renews `lease` every third of the lease period until `stop`; marks it
/// lost when a renewal is refused or none is acknowledged for a period.
async fn renew_loop<K: Key>(
    recorder: PgRecorder<K>,
    lease: Lease<K>,
    _holding: Holding,
    stop: CancellationToken,
) {
    let period = Duration::from_micros(recorder.inner.lease_micros as u64);
    let mut acknowledged = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(period / 3) => {}
        }
        if !recorder.inner.renewing.load(Ordering::Relaxed) {
            continue;
        }
        let sent = tokio::time::Instant::now();
        tokio::select! {
            _ = stop.cancelled() => return,
            renewed = recorder.renew(&lease) => match renewed {
                Ok(true) => acknowledged = sent,
                Ok(false) => {
                    lease.inner.lost.cancel();
                    return;
                }
                Err(_) => {}
            }
        }
        if acknowledged.elapsed() >= period {
            lease.inner.lost.cancel();
        }
    }
}
