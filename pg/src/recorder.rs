//! [`PgRecorder`]: the user's calls on one table. Each is one or a few
//! statements of the database handle (`db.rs`); a granted claim or revoke
//! continues as an [`Attempt`].

use crate::attempt::{Attempt, Finish, Lease, resolve};
use crate::bounds::Bounds;
use crate::db::{Connections, Db, Key, Stored};
use crate::error::Error;
use crate::grant::grant;
use crate::refusal::{LaunchRefusal, Refused, RevokeRefusal};
use crate::sql::{self, Statements};
use crate::trace::{call, listing, traced};
use async_tasks_recorder::spec::{Outcome, TaskState};
use async_tasks_recorder::{Page, PagedListing};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Settings of a recorder.
#[derive(Clone, Debug)]
pub struct Config {
    /// How long a claim holds the id without a renewal. Default 30 s.
    pub lease: Duration,
    /// Longest pause between two polls of [`PgRecorder::wait`]; the first
    /// polls come after 1 ms and double up to this. Default 50 ms.
    pub wait_poll_max: Duration,
    /// Connections in the pool of the calls and finishes. Default 16.
    pub pool_size: usize,
    /// Connections kept for lease renewals only, so that calls waiting on
    /// a locked row cannot starve them. Default 2.
    pub renewal_pool_size: usize,
    /// How long any one statement, lock wait and pool wait may take.
    /// Default: derived from the lease (see [`Bounds`]).
    pub bounds: Bounds,
    /// The connections lead to a pooler in transaction mode (PgBouncer
    /// with `pool_mode = transaction`), which hands each transaction
    /// whichever server session is free. Then every statement is sent
    /// unnamed (a named prepared statement lives in one server session,
    /// and names from two clients collide there), nothing is set through
    /// the start-up `options` (a pooler refuses or drops them), and the
    /// first call checks that the server's defaults are READ COMMITTED and
    /// `synchronous_commit = on`, refusing with [`Error::Settings`]
    /// otherwise. The server's bounds are then the role's
    /// `statement_timeout` and `lock_timeout`; the client still bounds
    /// every reply. An unnamed statement is planned at each call, so this
    /// is off by default. Default `false`.
    pub pooler: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            lease: Duration::from_secs(30),
            wait_poll_max: Duration::from_millis(50),
            pool_size: 16,
            renewal_pool_size: 2,
            bounds: Bounds::default(),
            pooler: false,
        }
    }
}

/// The recorder on one PostgreSQL table. Clones share one pool.
pub struct PgRecorder<K> {
    pub(crate) db: Arc<Db>,
    wait_poll_max: Duration,
    _key: std::marker::PhantomData<fn(K) -> K>,
}

impl<K> Clone for PgRecorder<K> {
    fn clone(&self) -> Self {
        PgRecorder {
            db: self.db.clone(),
            wait_poll_max: self.wait_poll_max,
            _key: std::marker::PhantomData,
        }
    }
}

impl<K: Key> PgRecorder<K> {
    /// A recorder on table `table` of the database `config` names, with its
    /// own pool. `table` is a lower-case identifier of at most 50 bytes
    /// (else [`Error::BadTableName`]); reserved words such as `user` are
    /// admitted, since every name is quoted. Its sequence and indexes are
    /// named `{table}$fence`, `{table}$pkey`, `{table}$by_state` and
    /// `{table}$leased`: no table's name holds a `$`, so no other
    /// recorder's table can take one of them. Call
    /// [`install`](Self::install) to create or check the table; the
    /// [privileges](crate#privileges) each call needs are in the crate docs.
    pub fn new(
        config: tokio_postgres::Config,
        table: &str,
        settings: Config,
    ) -> Result<Self, Error> {
        if !sql::is_identifier(table) {
            return Err(Error::BadTableName(table.into()));
        }
        Self::open(config, Statements::new(table, K::SQL_TYPE), settings)
    }

    /// A recorder sending `sql`.
    pub(crate) fn open(
        config: tokio_postgres::Config,
        sql: Statements,
        settings: Config,
    ) -> Result<Self, Error> {
        let db = Db::open(config, sql, K::pg_type(), Connections::of(&settings))?;
        Ok(Self::on(db, &settings))
    }

    /// The recorder on `db`.
    pub(crate) fn on(db: Db, settings: &Config) -> Self {
        PgRecorder {
            db: Arc::new(db),
            wait_poll_max: settings.wait_poll_max.max(Duration::from_millis(1)),
            _key: std::marker::PhantomData,
        }
    }

    /// Creates the table, its fence sequence and its indexes if the table
    /// is absent, marking it with this crate's schema version (its comment),
    /// then checks what the statements will reach: the table's version and
    /// columns (names, types, nullability), a fence sequence whose values
    /// rise one at a time (`CACHE 1`, no `CYCLE`), and the indexes on this
    /// table. Anything else, an existing table with a missing sequence or
    /// index included, is [`Error::Schema`] naming each difference: an
    /// existing table is checked, never altered, and one without this
    /// version (made by hand, by another release) is refused. Replicas may all call it
    /// at start-up: installs of one table are serialised by an advisory
    /// lock on its name.
    pub async fn install(&self) -> Result<(), Error> {
        self.db.install().await
    }

    /// The stored record of `id` (what every read reports).
    pub async fn read(&self, id: &K) -> Result<Stored, Error> {
        traced(call!(TRACE, "read", id), self.db.read(id)).await
    }

    /// What a [`finish_in`](Attempt::finish_in) with `outcome` under
    /// `lease` did, once its transaction ended with a `COMMIT` whose answer
    /// did not come (a broken connection, or a commit whose synchronous
    /// wait was cancelled: the connection then says "already committed
    /// locally, but might not have been replicated"). `Applied` if the row
    /// proves the commit, after a write of this call's own has committed,
    /// so the commit is where a promotion keeps it; `Stale` if the row
    /// proves it did not commit; [`Error::InDoubt`] once the id has moved
    /// to a later epoch and the row can no longer tell. Call it only after
    /// the transaction has ended.
    pub async fn resolve_commit(
        &self,
        lease: &Lease<K>,
        outcome: Outcome,
    ) -> Result<Finish, Error> {
        let resolved = resolve(&self.db, lease, lease.holding(), outcome).await?;
        // A row that still shows the attempt holding the id: the
        // transaction ended without committing its finish.
        Ok(resolved.proved(lease.holding())?.unwrap_or(Finish::Stale))
    }

    /// The id's state: one read of its row.
    pub async fn query(&self, id: &K) -> Result<TaskState, Error> {
        let read = async { Ok(self.read(id).await?.phase.state()) };
        traced(call!(TRACE, "query", id), read).await
    }

    /// Claims `id`: the id becomes `Working` under a new fence, or the
    /// claim is refused with `Working` or `Success`.
    ///
    /// A refusal is one read of the row: no row lock, no WAL, no wait
    /// behind a writer of the row. Only an id that read finds launchable
    /// (absent, `NotFound`, `Failed`, or `Working` with a lapsed lease) is
    /// sent the guarded claim; if that matches nothing (the row moved on
    /// after the read), the row is read again.
    pub async fn claim(&self, id: K) -> Result<Result<Attempt<K>, LaunchRefusal>, Error> {
        traced(call!(DEBUG, "claim", id), grant(&self.db, id)).await
    }

    /// Starts `task` under `id` on the current runtime: `Ok(lease)` if the
    /// claim was granted (the task runs, its output decides the finish),
    /// `Err(Refused::By(Working | Success))` if not.
    pub async fn launch<F, Fut, R, E>(
        &self,
        id: K,
        task: F,
    ) -> Result<Lease<K>, Refused<LaunchRefusal>>
    where
        F: FnOnce(Lease<K>) -> Fut,
        Fut: Future<Output = Result<R, E>> + Send + 'static,
    {
        let span = call!(DEBUG, "launch", id);
        let launched = async {
            let attempt = self.claim(id).await?.map_err(Refused::By)?;
            let lease = attempt.lease().clone();
            let future = task(lease.clone());
            tokio::spawn(async move {
                let outcome = Outcome::of(&future.await);
                let _ = attempt.finish(outcome).await;
            });
            Ok(lease)
        };
        traced(span, launched).await
    }

    /// Runs `task` under `id` in place: its output and what its fenced
    /// finish did. Refuses as [`launch`](Self::launch) does.
    pub async fn launch_block<F, Fut, R, E>(
        &self,
        id: K,
        task: F,
    ) -> Result<(Result<R, E>, Result<Finish, Error>), Refused<LaunchRefusal>>
    where
        F: FnOnce(Lease<K>) -> Fut,
        Fut: Future<Output = Result<R, E>>,
    {
        let span = call!(DEBUG, "launch_block", id);
        let ran = async {
            let attempt = self.claim(id).await?.map_err(Refused::By)?;
            Ok(attempt.run(task).await)
        };
        traced(span, ran).await
    }

    /// Begins a revoke of a succeeded `id`: the id becomes `Revoking` under
    /// a new fence (it still reads `Success`).
    pub async fn revoke_begin(&self, id: K) -> Result<Result<Attempt<K>, RevokeRefusal>, Error> {
        traced(call!(DEBUG, "revoke_begin", id), grant(&self.db, id)).await
    }

    /// Runs `revoke` to undo the success of `id`: `Ok` ends the epoch (the
    /// id becomes `NotFound`, epoch + 1), `Err` leaves it `Success`.
    pub async fn revoke<F, Fut, R, E>(
        &self,
        id: K,
        revoke: F,
    ) -> Result<(Result<R, E>, Result<Finish, Error>), Refused<RevokeRefusal>>
    where
        F: FnOnce(Lease<K>) -> Fut,
        Fut: Future<Output = Result<R, E>>,
    {
        let span = call!(DEBUG, "revoke", id);
        let ran = async {
            let attempt = self.revoke_begin(id).await?.map_err(Refused::By)?;
            Ok(attempt.run(revoke).await)
        };
        traced(span, ran).await
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
        let waited = async {
            let mut pause = Duration::from_millis(1);
            loop {
                let now = self.read(id).await?;
                if now.phase.state() != TaskState::Working {
                    return Ok(now.phase.state());
                }
                if now.lapsed {
                    self.db.expire_one(id).await?;
                    continue;
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(self.wait_poll_max);
            }
        };
        traced(call!(TRACE, "wait", id), waited).await
    }

    /// The sweep: moves up to `limit` lapsed rows (`Working` to `Failed`,
    /// `Revoking` to `Success`) and returns them with their new state.
    /// Idempotent; any replica may run it at any time. A row that another
    /// statement holds at that moment (being finished, claimed or renewed)
    /// is skipped, not waited for (`SKIP LOCKED`); the next sweep takes it
    /// if it is still lapsed.
    pub async fn sweep(&self, limit: i64) -> Result<Vec<(K, TaskState)>, Error> {
        traced(
            tracing::debug_span!("sweep", limit, outcome = tracing::field::Empty),
            self.db.sweep(limit),
        )
        .await
    }

    /// Ids now in `state` (none for `NotFound`), through the `(state, id)` index.
    pub async fn list(&self, state: TaskState) -> Result<Vec<K>, Error> {
        traced(listing!("list", state), self.db.list(state)).await
    }

    /// One page of the ids now in `state`: up to `limit` (0 is taken as 1)
    /// in id order, each greater than `after` if given, read through the
    /// `(state, id)` index in one statement (a keyset page: its cost is the
    /// page's, not the ids before it). Pass the page's
    /// [`next`](Page::next) as the next `after`; a walk returns every id
    /// that stays in `state` throughout exactly once ([`PagedListing`]).
    pub async fn list_page(
        &self,
        state: TaskState,
        after: Option<&K>,
        limit: usize,
    ) -> Result<Page<K>, Error> {
        let limit = limit.max(1);
        let after = after.map(|after| after as &(dyn tokio_postgres::types::ToSql + Sync));
        let length = i64::try_from(limit).unwrap_or(i64::MAX);
        let ids = self.db.list_page(state, after, length).await?;
        Ok(Page::of(ids, limit))
    }

    /// How many ids are in `state` (0 for `NotFound`): a count of the
    /// `(state, id)` index's entries for the state's stored codes, which
    /// the server can take from the index alone.
    pub async fn count(&self, state: TaskState) -> Result<u64, Error> {
        traced(listing!("count", state), self.db.count(state)).await
    }
}

/// The recorder's pages and counts, behind the trait the in-memory recorder
/// implements too.
impl<K: Key> PagedListing<K> for PgRecorder<K> {
    type Error = Error;

    async fn list_page(
        &self,
        state: TaskState,
        after: Option<&K>,
        limit: usize,
    ) -> Result<Page<K>, Error> {
        PgRecorder::list_page(self, state, after, limit).await
    }

    async fn count(&self, state: TaskState) -> Result<u64, Error> {
        PgRecorder::count(self, state).await
    }
}
