//! The database handle: the pool, the statements, the id's column type,
//! the lease, and one method per statement. Every method sends one
//! autocommit statement (or, for a finish, one statement inside the
//! caller's transaction); the recorder and its attempts decide what to send
//! and what an answer means.
//!
//! Each statement's parameters and returned columns are listed on its
//! field of [`Statements`]; the methods below bind and read them in that
//! order.

use crate::bounds::Limits;
use crate::connect::ClosingOnWarnings;
use crate::error::Error;
use crate::schema;
use crate::sql::{Statements, phase_of, phases_read_as, state_code};
pub(crate) use crate::store::column;
use crate::store::{Connection, Param, PoolOf, RowRef, Rows, Store, Which, typed};
use crate::switches::Switches;
use async_tasks_recorder::spec::{Epoch, Fence, Outcome, Phase, TaskState};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio_postgres::Transaction;
use tokio_postgres::types::{FromSqlOwned, ToSql, Type};

/// The stored codes of the phases that read as `state`: one, and a second
/// for `Success` (`Revoking` reads as it); `None` for `NotFound`, which
/// lists and counts no row (a `NotFound` row is a revoked one).
fn stored_codes(state: TaskState) -> Option<(i16, Option<i16>)> {
    if state == TaskState::NotFound {
        return None;
    }
    let mut codes = phases_read_as(state).map(state_code);
    Some((codes.next()?, codes.next()))
}

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

impl Stored {
    /// What the read reports for an id without a row.
    pub(crate) const ABSENT: Stored = Stored {
        phase: Phase::NotFound,
        epoch: 0,
        fence: 0,
        success_fence: None,
        lapsed: false,
    };

    /// Decodes a row of the read: `(state, epoch, fence, success_fence, lapsed)`.
    fn from_row(row: RowRef<'_>) -> Result<Stored, Error> {
        let state: i16 = column(row, 0, "state")?;
        let epoch: i64 = column(row, 1, "epoch")?;
        let fence: i64 = column(row, 2, "fence")?;
        let success_fence: Option<i64> = column(row, 3, "success_fence")?;
        Ok(Stored {
            phase: phase_of(state),
            epoch: epoch as Epoch,
            fence: fence as Fence,
            success_fence: success_fence.map(|f| f as Fence),
            lapsed: column(row, 4, "lapsed")?,
        })
    }
}

/// What a grant statement returned: `(epoch, fence)` of the new attempt
/// from its row `(fence, epoch)`, or `None` if its guard admitted no row.
fn row_grant(rows: Rows) -> Result<Option<(Epoch, Fence)>, Error> {
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let fence: i64 = column(row, 0, "fence")?;
    let epoch: i64 = column(row, 1, "epoch")?;
    Ok(Some((epoch as Epoch, fence as Fence)))
}

/// What an attempt holds: a launch's `Working` or a revoke's `Revoking`.
/// It picks the statement that grants the attempt and the one that
/// finishes it.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub(crate) enum Holding {
    Work,
    Revoke,
}

impl Holding {
    /// The grant's name in errors.
    pub(crate) fn grant_name(self) -> &'static str {
        match self {
            Holding::Work => "claim",
            Holding::Revoke => "revoke begin",
        }
    }

    /// The finish's name in errors.
    pub(crate) fn finish_name(self) -> &'static str {
        match self {
            Holding::Work => "finish",
            Holding::Revoke => "revoke end",
        }
    }
}

/// A lease or interval in microseconds, refusing zero and overflow.
fn positive_micros(d: Duration) -> Result<i64, Error> {
    i64::try_from(d.as_micros())
        .ok()
        .filter(|&m| m > 0)
        .ok_or(Error::BadDuration(d))
}

/// The bound on `install`'s lock wait and each of its statements.
const INSTALL_BOUND: Duration = Duration::from_secs(60);

/// One recorder's connection to its table, shared by its clones and
/// attempts.
pub(crate) struct Db {
    /// Where the statements go: the connections of the user's calls and of
    /// finishes, and those of renewals only (user calls waiting on a
    /// locked row, or a burst of them, cannot starve the renewals of other
    /// ids' leases).
    store: Store,
    limits: Limits,
    sql: Statements,
    key_type: Type,
    lease_micros: i64,
    /// Statements go out unnamed and nothing is set at start-up: the
    /// connections lead to a pooler in transaction mode.
    pooler: bool,
    /// Behind a pooler: the server's defaults were found to be those the
    /// proofs assume.
    settled_defaults: AtomicBool,
    /// The test switches, read by the statements and the renewal loop.
    pub(crate) switches: Switches,
}

/// `config` with the start-up option `setting` after the options already
/// set: the server applies them in order, so `setting` wins over an earlier
/// one for the same parameter.
pub(crate) fn with_setting<'a>(
    config: &'a mut tokio_postgres::Config,
    setting: &str,
) -> &'a mut tokio_postgres::Config {
    let options = match config.get_options() {
        Some(set) if !set.trim().is_empty() => format!("{set} {setting}"),
        _ => setting.to_owned(),
    };
    config.options(options)
}

/// The session settings the statements' arguments assume, whatever the
/// server's or the caller's defaults: every statement runs under READ
/// COMMITTED, whose re-check of the `WHERE` on the latest row version is
/// what makes a guard hold (P10; under SERIALIZABLE a contended claim is
/// refused with a serialization error instead of answered), and a commit
/// is acknowledged only once it is durable (P11).
const SESSION_SETTINGS: &str =
    "-c default_transaction_isolation=read\\ committed -c synchronous_commit=on";

/// The settings of a recorder's connections to the database.
pub(crate) struct Connections {
    pub(crate) lease: Duration,
    pub(crate) limits: Limits,
    pub(crate) pool_size: usize,
    pub(crate) renewal_pool_size: usize,
    pub(crate) pooler: bool,
}

impl Connections {
    /// The connection settings of `settings`.
    pub(crate) fn of(settings: &crate::Config) -> Connections {
        Connections {
            lease: settings.lease,
            limits: Limits::of(settings.bounds, settings.lease),
            pool_size: settings.pool_size,
            renewal_pool_size: settings.renewal_pool_size,
            pooler: settings.pooler,
        }
    }
}

/// Behind a pooler, what [`SESSION_SETTINGS`] would have set, read from the
/// server: the role's (or database's, or server's) defaults, which every
/// session the pooler opens starts with.
const DEFAULTS: &str =
    "SELECT current_user::text, current_setting('default_transaction_isolation'),
        current_setting('synchronous_commit')";

/// Why the server's defaults, read by [`DEFAULTS`], are not those the
/// proofs assume, with the line that sets each; `None` if they are.
fn defaults_refused(row: &tokio_postgres::Row) -> Result<Option<String>, Error> {
    let user: String = column(row, 0, "current_user")?;
    let isolation: String = column(row, 1, "default_transaction_isolation")?;
    let commit: String = column(row, 2, "synchronous_commit")?;
    let mut wrong = Vec::new();
    if isolation != "read committed" {
        wrong.push(format!(
            "default_transaction_isolation is {isolation:?}, not read committed \
             (ALTER ROLE {user} SET default_transaction_isolation = 'read committed')"
        ));
    }
    // `remote_apply` waits for the local flush too, and for more.
    if !matches!(commit.as_str(), "on" | "remote_apply") {
        wrong.push(format!(
            "synchronous_commit is {commit:?}, not on \
             (ALTER ROLE {user} SET synchronous_commit = on)"
        ));
    }
    Ok((!wrong.is_empty()).then(|| wrong.join("; ")))
}

/// A pool of up to `size` connections of `config`, each closed at the
/// first warning the server sends (`connect.rs`).
fn pool(config: tokio_postgres::Config, size: usize) -> Result<Pool, Error> {
    let manager = Manager::from_connect(
        config,
        ClosingOnWarnings,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(size.max(1))
        .build()
        .map_err(|e| Error::Pool(e.to_string()))
}

impl Db {
    /// Pools of connections to the database `config` names, sending `sql`
    /// with ids of column type `key_type`, under `connections`.
    pub(crate) fn open(
        mut config: tokio_postgres::Config,
        sql: Statements,
        key_type: Type,
        connections: Connections,
    ) -> Result<Db, Error> {
        let lease_micros = positive_micros(connections.lease)?;
        if connections.pooler {
            // A pooler refuses start-up options or drops them (PgBouncer
            // #908): the defaults are checked by the first call instead.
            connections.limits.apply_to_socket(&mut config);
        } else {
            with_setting(&mut config, SESSION_SETTINGS);
            connections.limits.apply(&mut config);
        }
        Ok(Db {
            store: Store::Postgres {
                calls: pool(config.clone(), connections.pool_size)?,
                renewals: pool(config, connections.renewal_pool_size)?,
            },
            limits: connections.limits,
            sql,
            key_type,
            lease_micros,
            pooler: connections.pooler,
            settled_defaults: AtomicBool::new(false),
            switches: Switches::default(),
        })
    }

    /// The handle of a recorder on the simulated database `server`, with
    /// the pools and bounds of `connections`.
    #[cfg(feature = "test-hooks")]
    pub(crate) fn simulated(
        server: &std::sync::Arc<crate::sim::Server>,
        sql: Statements,
        key_type: Type,
        connections: Connections,
    ) -> Result<Db, Error> {
        let pools = server.pools(
            connections.pool_size,
            connections.renewal_pool_size,
            connections.limits.lock,
        );
        Ok(Db {
            store: Store::Simulated(pools),
            limits: connections.limits,
            sql,
            key_type,
            lease_micros: positive_micros(connections.lease)?,
            pooler: false,
            settled_defaults: AtomicBool::new(false),
            switches: Switches::default(),
        })
    }

    /// How long a grant or a renewal holds the id.
    pub(crate) fn lease(&self) -> Duration {
        Duration::from_micros(self.lease_micros as u64)
    }

    /// The bounds of every statement.
    pub(crate) fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Creates the table if absent and checks what the statements will
    /// reach (`schema.rs`), in one transaction under an advisory lock on the
    /// table's name: replicas that start together and each install the
    /// table wait for one another instead of racing on the catalog
    /// (`CREATE … IF NOT EXISTS` is not atomic against a concurrent create
    /// of the same name).
    ///
    /// Installs wait for one another, and the first may create the table,
    /// so the install's lock wait and statements have a bound of their own,
    /// [`INSTALL_BOUND`], whatever the calls' bounds.
    pub(crate) async fn install(&self) -> Result<(), Error> {
        let calls = match &self.store {
            Store::Postgres { calls, .. } => calls,
            // The simulated database has its table from the start.
            #[cfg(feature = "test-hooks")]
            Store::Simulated(_) => return Ok(()),
        };
        let mut client = calls.get().await?;
        let tx = client.transaction().await?;
        let bound = crate::bounds::millis(INSTALL_BOUND);
        tx.batch_execute(&format!(
            "SET LOCAL lock_timeout = {bound}; SET LOCAL statement_timeout = {bound}"
        ))
        .await?;
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtext($1))",
            &[&self.sql.table()],
        )
        .await?;
        schema::install(&tx, &self.sql, &self.key_type).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Runs one statement on a connection of the user's pool.
    async fn run(&self, which: Which, types: &[Type], params: &[Param<'_>]) -> Result<Rows, Error> {
        self.run_on(PoolOf::Calls, which, types, params).await
    }

    /// Runs one statement on a connection of `pool`, within the bounds: a
    /// connection within the connection bound, the reply within the
    /// statement bound and a tenth. A connection whose reply did not come
    /// is dropped, never handed out again: the server behind it may have
    /// stopped answering.
    async fn run_on(
        &self,
        pool: PoolOf,
        which: Which,
        types: &[Type],
        params: &[Param<'_>],
    ) -> Result<Rows, Error> {
        let limits = &self.limits;
        let connection = limits
            .connection_within(self.store.connection(pool))
            .await?;
        let reply = async {
            match &connection {
                Connection::Postgres(client) => {
                    let sql = self.sql.text(which);
                    if self.pooler {
                        self.check_defaults(client).await?;
                    }
                    if self.pooler && !self.switches.named_statements() {
                        let rows = client.query_typed(sql, &typed(types, params)).await?;
                        return Ok(Rows::Postgres(rows));
                    }
                    let statement = client.prepare_typed_cached(sql, types).await?;
                    Ok(Rows::Postgres(client.query(&statement, params).await?))
                }
                #[cfg(feature = "test-hooks")]
                Connection::Simulated(connection) => Ok(Rows::Simulated(
                    connection.query(which, types, params).await?,
                )),
            }
        };
        let rows = limits.reply_within(reply).await;
        if matches!(rows, Err(Error::Timeout { .. })) {
            connection.discard();
        }
        rows
    }

    /// Behind a pooler, before the first statement: the server's defaults
    /// must be what [`SESSION_SETTINGS`] sets on a direct connection, since
    /// nothing can be set at start-up. Once they were, they are not read
    /// again.
    async fn check_defaults(&self, client: &tokio_postgres::Client) -> Result<(), Error> {
        if self.settled_defaults.load(Ordering::Acquire) {
            return Ok(());
        }
        let defaults = client.query_typed(DEFAULTS, &[]).await?;
        let row = defaults
            .first()
            .ok_or_else(|| Error::Settings("the server answered no row of settings".into()))?;
        if let Some(why) = defaults_refused(row)? {
            return Err(Error::Settings(why));
        }
        self.settled_defaults.store(true, Ordering::Release);
        Ok(())
    }

    /// [`run`](Self::run) for a statement that may safely run twice (a
    /// read, the sweep, an expiry): after a connection that broke (the
    /// server restarted, the network cut it), it is retried on another
    /// pooled connection, as many times as the pool has connections, since
    /// each of them may have broken at once. A server that refused the
    /// statement (a database error) is not retried.
    async fn run_idempotent(
        &self,
        which: Which,
        types: &[Type],
        params: &[Param<'_>],
    ) -> Result<Rows, Error> {
        // The pool's size is read only once a connection broke: a read is
        // the refusal's whole cost, and the status takes the pool's lock.
        let mut tries = None;
        loop {
            match self.run(which, types, params).await {
                Err(e) if e.broke_connection() => {
                    let left = tries.get_or_insert_with(|| self.store.pool_size(PoolOf::Calls));
                    if *left == 0 {
                        return Err(e);
                    }
                    *left -= 1;
                }
                done => return done,
            }
        }
    }

    /// The stored record of `id`.
    pub(crate) async fn read(&self, id: Param<'_>) -> Result<Stored, Error> {
        Ok(self.read_row(id).await?.unwrap_or(Stored::ABSENT))
    }

    /// The stored record of `id`, `None` if it has no row.
    pub(crate) async fn read_row(&self, id: Param<'_>) -> Result<Option<Stored>, Error> {
        let rows = self
            .run_idempotent(
                Which::Read,
                &[self.key_type.clone(), Type::INT8],
                &[id, &self.switches.shift()],
            )
            .await?;
        rows.first().map(Stored::from_row).transpose()
    }

    /// Whether a grant's first write goes out whatever its read found (a
    /// known-bad claim).
    pub(crate) fn claim_ignores_read(&self) -> bool {
        #[cfg(feature = "test-hooks")]
        return self.sql.claim_ignores_read;
        #[cfg(not(feature = "test-hooks"))]
        false
    }

    /// The guarded statement that grants `holding` of `id` (the claim, or
    /// the revoke begin), for a row the read found (`absent`: none):
    /// `(epoch, fence)` of the new attempt if its guard admitted the row,
    /// `None` if not. Sent once: a grant that failed in transit is not
    /// resent.
    pub(crate) async fn grant(
        &self,
        id: Param<'_>,
        holding: Holding,
        absent: bool,
    ) -> Result<Option<(Epoch, Fence)>, Error> {
        let shift = self.switches.shift();
        let rows = match holding {
            // No row to guard: the insert takes the id only while it has none.
            Holding::Work if absent => {
                let types = [self.key_type.clone(), Type::INT8];
                let params: [Param; 2] = [id, &self.lease_micros];
                self.run(Which::ClaimNew, &types, &params).await?
            }
            Holding::Work => {
                #[cfg(feature = "test-hooks")]
                if self.sql.claim_reads_client_clock {
                    let types = [
                        self.key_type.clone(),
                        Type::INT8,
                        Type::INT8,
                        Type::TIMESTAMPTZ,
                    ];
                    let client_now = self.switches.client_now();
                    let params: [Param; 4] = [id, &self.lease_micros, &shift, &client_now];
                    return row_grant(self.run(Which::ClaimByClientClock, &types, &params).await?);
                }
                let types = [self.key_type.clone(), Type::INT8, Type::INT8];
                let params: [Param; 3] = [id, &self.lease_micros, &shift];
                self.run(Which::Claim, &types, &params).await?
            }
            Holding::Revoke => {
                let types = [self.key_type.clone(), Type::INT8, Type::INT8];
                let params: [Param; 3] = [id, &self.lease_micros, &shift];
                self.run(Which::RevokeBegin, &types, &params).await?
            }
        };
        row_grant(rows)
    }

    /// Extends the lease of the attempt holding `fence` on `id`; `Ok(false)`
    /// if that fence is no longer current.
    pub(crate) async fn renew(&self, id: Param<'_>, fence: Fence) -> Result<bool, Error> {
        let types = [self.key_type.clone(), Type::INT8, Type::INT8, Type::INT8];
        let params: [Param; 4] = [
            id,
            &(fence as i64),
            &self.lease_micros,
            &self.switches.shift(),
        ];
        let rows = self
            .run_on(PoolOf::Renewals, Which::Renew, &types, &params)
            .await?;
        Ok(!rows.is_empty())
    }

    /// The fenced finish of `holding` by the attempt holding `fence` on
    /// `id`, in `tx` if given, else in autocommit; `Ok(true)` if it matched
    /// the row.
    pub(crate) async fn finish(
        &self,
        id: Param<'_>,
        fence: Fence,
        holding: Holding,
        outcome: Outcome,
        tx: Option<&Transaction<'_>>,
    ) -> Result<bool, Error> {
        let fence = fence as i64;
        let finished = match outcome {
            Outcome::Ok => Phase::Success,
            Outcome::Err => Phase::Failed,
        };
        let state = state_code(finished);
        let ok = outcome == Outcome::Ok;
        let (which, third, value): (Which, Type, Param) = match holding {
            Holding::Work => (Which::Finish, Type::INT2, &state),
            Holding::Revoke => (Which::RevokeEnd, Type::BOOL, &ok),
        };
        let types = [self.key_type.clone(), Type::INT8, third];
        let params: [Param; 3] = [id, &fence, value];
        let rows = match tx {
            Some(tx) => {
                let sql = self.sql.text(which);
                let reply = async {
                    if self.pooler && !self.switches.named_statements() {
                        return Ok(tx.query_typed(sql, &typed(&types, &params)).await?);
                    }
                    let statement = tx.prepare_typed(sql, &types).await?;
                    Ok(tx.query(&statement, &params).await?)
                };
                Rows::Postgres(self.limits.reply_within(reply).await?)
            }
            None => self.run(which, &types, &params).await?,
        };
        Ok(!rows.is_empty())
    }

    /// Settles the attempt holding `fence` on `id` as its `Err` finish
    /// would (`Working` to `Failed`, `Revoking` to `Success`), unless
    /// another session holds the row: `Ok(true)` if it did.
    pub(crate) async fn abandon(&self, id: Param<'_>, fence: Fence) -> Result<bool, Error> {
        let types = [self.key_type.clone(), Type::INT8];
        let rows = self
            .run(Which::Abandon, &types, &[id, &(fence as i64)])
            .await?;
        Ok(!rows.is_empty())
    }

    /// Commits a write of `id`'s row as it is, which returns once every
    /// earlier commit is where the server's `synchronous_commit` asks
    /// (on a synchronous standby, if one is named). A reply that does not
    /// come, or a closed connection (a cancelled wait: `connect.rs`), is an
    /// error.
    pub(crate) async fn confirm(&self, id: Param<'_>) -> Result<(), Error> {
        self.run(Which::Confirm, std::slice::from_ref(&self.key_type), &[id])
            .await?;
        Ok(())
    }

    /// Expires `id` if its lease has run out (the sweep for one id).
    pub(crate) async fn expire_one(&self, id: Param<'_>) -> Result<(), Error> {
        self.run_idempotent(
            Which::ExpireOne,
            &[self.key_type.clone(), Type::INT8],
            &[id, &self.switches.shift()],
        )
        .await?;
        Ok(())
    }

    /// Expires up to `limit` lapsed rows: each expired id with its new state.
    pub(crate) async fn sweep<K: FromSqlOwned>(
        &self,
        limit: i64,
    ) -> Result<Vec<(K, TaskState)>, Error> {
        let rows = self
            .run_idempotent(
                Which::Sweep,
                &[Type::INT8, Type::INT8],
                &[&self.switches.shift(), &limit],
            )
            .await?;
        rows.iter()
            .map(|row| {
                let state: i16 = column(row, 1, "state")?;
                Ok((column(row, 0, "id")?, phase_of(state).state()))
            })
            .collect()
    }

    /// Ids whose stored phase reads as `state` (none for `NotFound`: a
    /// `NotFound` row is a revoked one, not a listed id).
    pub(crate) async fn list<K: FromSqlOwned>(&self, state: TaskState) -> Result<Vec<K>, Error> {
        if state == TaskState::NotFound {
            return Ok(Vec::new());
        }
        // The statement takes two codes: one phase is passed twice.
        let phases: Vec<i16> = phases_read_as(state).map(state_code).collect();
        let (Some(&first), Some(&last)) = (phases.first(), phases.last()) else {
            return Ok(Vec::new());
        };
        let rows = self
            .run_idempotent(Which::List, &[Type::INT2, Type::INT2], &[&first, &last])
            .await?;
        rows.iter().map(|row| column(row, 0, "id")).collect()
    }

    /// Up to `limit` ids whose stored phase reads as `state`, in id order,
    /// each greater than `after` if given (none for `NotFound`).
    pub(crate) async fn list_page<K: FromSqlOwned>(
        &self,
        state: TaskState,
        after: Option<Param<'_>>,
        limit: i64,
    ) -> Result<Vec<K>, Error> {
        let Some((first, second)) = stored_codes(state) else {
            return Ok(Vec::new());
        };
        let codes: [Param; 3] = [&first, &second, &limit];
        let rows = match after {
            None => {
                let types = [Type::INT2, Type::INT2, Type::INT8];
                self.run_idempotent(Which::PageFirst, &types, &codes)
                    .await?
            }
            Some(after) => {
                let types = [Type::INT2, Type::INT2, Type::INT8, self.key_type.clone()];
                let [first, second, limit] = codes;
                let params: [Param; 4] = [first, second, limit, after];
                self.run_idempotent(Which::PageAfter, &types, &params)
                    .await?
            }
        };
        rows.iter().map(|row| column(row, 0, "id")).collect()
    }

    /// How many ids are in `state` (0 for `NotFound`), counted from the
    /// `(state, id)` index.
    pub(crate) async fn count(&self, state: TaskState) -> Result<u64, Error> {
        let Some((first, second)) = stored_codes(state) else {
            return Ok(0);
        };
        let rows = self
            .run_idempotent(Which::Count, &[Type::INT2, Type::INT2], &[&first, &second])
            .await?;
        let count: Option<i64> = match rows.first() {
            Some(row) => column(row, 0, "count")?,
            None => None,
        };
        Ok(count.unwrap_or(0) as u64)
    }
}
