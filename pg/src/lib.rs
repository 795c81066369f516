//! The `async_tasks_recorder` semantics on PostgreSQL: several replicas
//! share one durable record, and a worker whose lease lapsed while it was
//! paused cannot complete over the attempt that replaced it.
//!
//! # Model
//! Each id is one row. Every write is **one autocommit statement under
//! READ COMMITTED with every guard inside it** (`src/sql.rs`): the row lock
//! that statement takes is its linearization point, and READ COMMITTED
//! re-evaluates the `WHERE` on the locked, latest row version; a read, and
//! so a refusal, takes effect at its statement snapshot
//! (proofs/P10-pg-linearizable.md). The transitions are those of
//! [`spec::fenced_step`](async_tasks_recorder::spec::fenced_step), the same
//! [`spec::step`](async_tasks_recorder::spec::step) the in-memory recorder runs:
//!
//! - **claim** (launch): first a read of the row, which alone answers a
//!   refusal (no row lock, no WAL: the common case, a retry of a running
//!   task, costs a read). Only an id the read finds launchable is sent the
//!   guarded write: an `INSERT … ON CONFLICT (id) DO NOTHING` for an absent
//!   row, or an `UPDATE … WHERE` the row is `NotFound`, `Failed`, or
//!   `Working` with its lease run out by the database clock. The write
//!   draws a new **fence** from a global sequence and leases the row until
//!   `clock_timestamp() + lease`; if it matches nothing, the row moved on
//!   after the read, which is read again. A revoke begin is granted the same
//!   way.
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
//! or another replica took the id over), or a whole lease period has passed
//! since the send of the latest acknowledged grant or renewal (however long
//! the renewal in flight hangs), the lease is marked **lost**: [`Lease::is_lost`]
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
//! # Privileges
//! What each phase needs, as `pg/tests/schema.rs` checks on PostgreSQL 15
//! with a role holding nothing else:
//! - **Every call but `install`**: `USAGE` on the table's schema;
//!   `SELECT`, `INSERT` and `UPDATE` on the table (the claim is an
//!   `INSERT … ON CONFLICT DO UPDATE … RETURNING`, the sweep locks rows
//!   `FOR UPDATE`; no row is ever deleted); `USAGE` on the fence sequence
//!   `"{table}$fence"` for `nextval` (`UPDATE` on it does too, `SELECT`
//!   alone does not). The connection of [`Attempt::finish_in`] needs the
//!   same table grants.
//! - **`install` of an absent table**: `CREATE` on the schema. The
//!   installing role owns the table, its sequence and its indexes; grant
//!   the run-time privileges on them to the replicas' role.
//! - **`install` of an existing table**: only `USAGE` on the schema. It
//!   creates nothing, takes an advisory lock and reads the system catalogs
//!   (`pg_class`, `pg_attribute`, `pg_index`, `pg_sequence`, and
//!   `pg_description` for the schema version), which every role may read;
//!   so every replica may install at start-up under the run-time role.
//!
//! A missing privilege is answered as an [`Error::Db`] carrying the
//! server's SQLSTATE 42501 and its message ("permission denied for …").
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
//! # Behind PgBouncer
//! A pooler in transaction mode hands each transaction whichever server
//! session is free, so a named prepared statement, a start-up option and
//! any session setting are lost between two statements, and two clients'
//! statements of the same name collide in one session. Set
//! [`Config::pooler`]: statements go out unnamed, nothing is set at
//! start-up, and the first call checks the server's defaults instead:
//!
//! ```text
//! ALTER ROLE app SET default_transaction_isolation = 'read committed';  -- checked
//! ALTER ROLE app SET synchronous_commit = on;                           -- checked
//! ALTER ROLE app SET statement_timeout = '10s';   -- the statement bound
//! ALTER ROLE app SET lock_timeout = '5s';         -- the lock bound
//! ALTER ROLE app SET idle_in_transaction_session_timeout = '30s';  -- for finish_in
//! ```
//!
//! The last three are the server's halves of [`Bounds`] and
//! [`end_idle_transactions`]; without them the client's reply bound still
//! ends every call, but a claim stuck behind a row lock then ends in doubt
//! rather than refused. No other client of the same pool may change a
//! session setting with a plain `SET` (only `SET LOCAL`): in transaction
//! mode it would outlive its transaction in the server session the
//! recorder gets next.
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

// The rooms, from the user's calls down to the SQL text: `recorder` (the
// calls), `grant` (claim and revoke begin), `attempt` (lease, renewal,
// finish), `db` (one method per statement), `schema` (install, and whether
// the table is the one it makes), `sql` (the statements, the state codes,
// the known-bad catalogue). `refusal` and `error` are the
// values they answer with; `switches` holds the test switches that `db`
// and `attempt` read, and `hooks` the hidden `PgRecorder` calls that flip
// them.
mod attempt;
mod bounds;
mod connect;
mod db;
mod error;
mod grant;
#[cfg(feature = "test-hooks")]
mod hooks;
mod recorder;
mod refusal;
mod schema;
mod sql;
mod store;
mod sweeper;
mod switches;
mod trace;

pub mod cluster;
#[cfg(feature = "test-hooks")]
#[doc(hidden)]
pub mod sim;

pub use attempt::{Attempt, Finish, Lease, end_idle_transactions};
pub use bounds::Bounds;
pub use db::{Key, Stored};
pub use error::{Bound, Error};
pub use recorder::{Config, PgRecorder};
pub use refusal::{LaunchRefusal, Refused, RevokeRefusal};
pub use sweeper::Sweeper;

pub use async_tasks_recorder::{Page, PagedListing};

pub use async_tasks_recorder::spec::{Epoch, Fence, Outcome, Phase, TaskState};

#[doc(hidden)]
pub use sql::{Statements, phase_of, state_code, state_codes};

#[cfg(feature = "test-hooks")]
#[doc(hidden)]
pub use sql::KnownBad;
#[cfg(feature = "test-hooks")]
#[doc(hidden)]
pub use switches::Mutant;
