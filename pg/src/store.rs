//! The seam under the client logic: "run this statement with these
//! parameters on a connection of this pool". Everything above it (the
//! grant, the finish loop and its resolution, the renewal loop, the drop
//! guards, the sweeper, the bounds on every wait) is the same code whether
//! the statement goes to PostgreSQL or, in tests, to the simulated database
//! of `sim/` (`test-hooks` only), which is how the simulation runs the
//! recorder's own client code against statements that apply late, twice,
//! never, or in doubt.
//!
//! The seam is an enum rather than a trait object: a production build has
//! one variant, so each call is the direct call it was before.

use crate::error::Error;
#[cfg(feature = "test-hooks")]
use crate::sim;
use deadpool_postgres::Pool;
use tokio_postgres::types::{FromSqlOwned, ToSql, Type};

/// A statement parameter.
pub(crate) type Param<'a> = &'a (dyn ToSql + Sync);

/// Which statement of [`Statements`](crate::sql::Statements) a call runs:
/// the simulated database computes each one's effect from its name.
#[derive(Clone, Copy, Debug, Eq, PartialEq, Hash)]
pub enum Which {
    /// The read of one row.
    Read,
    /// The claim of an id without a row.
    ClaimNew,
    /// The claim of an existing row.
    Claim,
    /// The known-bad claim that judges leases by the client's clock.
    #[cfg(feature = "test-hooks")]
    ClaimByClientClock,
    /// The grant of a revoke.
    RevokeBegin,
    /// A lease renewal.
    Renew,
    /// The fenced finish of a launch.
    Finish,
    /// The fenced end of a revoke.
    RevokeEnd,
    /// The settle of a rolled-back or abandoned attempt, skipping a locked row.
    Abandon,
    /// The confirming write of a resolution.
    Confirm,
    /// The expiry of one lapsed row.
    ExpireOne,
    /// The sweep of lapsed rows.
    Sweep,
    /// Every id in a state.
    List,
    /// The first page of a listing.
    PageFirst,
    /// A later page of a listing.
    PageAfter,
    /// The count of a state.
    Count,
}

/// Which pool a statement takes its connection from.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub(crate) enum PoolOf {
    /// The user's calls and the finishes.
    Calls,
    /// Lease renewals only.
    Renewals,
}

/// Where the statements go.
pub(crate) enum Store {
    /// PostgreSQL, through two pools of connections.
    Postgres { calls: Pool, renewals: Pool },
    /// The simulated database.
    #[cfg(feature = "test-hooks")]
    Simulated(sim::Pools),
}

/// A connection taken from a [`Store`]'s pool, returned to it when dropped.
pub(crate) enum Connection {
    Postgres(deadpool_postgres::Object),
    #[cfg(feature = "test-hooks")]
    Simulated(sim::Connection),
}

/// The rows a statement returned.
pub(crate) enum Rows {
    Postgres(Vec<tokio_postgres::Row>),
    #[cfg(feature = "test-hooks")]
    Simulated(Vec<sim::Row>),
}

/// One returned row.
#[derive(Clone, Copy)]
pub(crate) enum RowRef<'a> {
    Postgres(&'a tokio_postgres::Row),
    #[cfg(feature = "test-hooks")]
    Simulated(&'a sim::Row),
}

impl<'a> From<&'a tokio_postgres::Row> for RowRef<'a> {
    fn from(row: &'a tokio_postgres::Row) -> Self {
        RowRef::Postgres(row)
    }
}

impl Store {
    /// Connections of `pool` at most: how many times a statement that may
    /// run twice is retried after a broken connection.
    pub(crate) fn pool_size(&self, pool: PoolOf) -> usize {
        match self {
            Store::Postgres { calls, renewals } => match pool {
                PoolOf::Calls => calls.status().max_size,
                PoolOf::Renewals => renewals.status().max_size,
            },
            #[cfg(feature = "test-hooks")]
            Store::Simulated(pools) => pools.pool_size(pool),
        }
    }

    /// A connection of `pool`, once one is free (the caller bounds the wait).
    pub(crate) async fn connection(&self, pool: PoolOf) -> Result<Connection, Error> {
        match self {
            Store::Postgres { calls, renewals } => {
                let pool = match pool {
                    PoolOf::Calls => calls,
                    PoolOf::Renewals => renewals,
                };
                Ok(Connection::Postgres(pool.get().await?))
            }
            #[cfg(feature = "test-hooks")]
            Store::Simulated(pools) => Ok(Connection::Simulated(pools.connection(pool).await?)),
        }
    }
}

impl Connection {
    /// Drops the connection for good, never to be handed out again: its
    /// reply did not come, and the server behind it may have stopped
    /// answering.
    pub(crate) fn discard(self) {
        match self {
            Connection::Postgres(client) => drop(deadpool_postgres::Object::take(client)),
            #[cfg(feature = "test-hooks")]
            Connection::Simulated(connection) => connection.discard(),
        }
    }
}

impl Rows {
    /// No row returned.
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many rows were returned.
    pub(crate) fn len(&self) -> usize {
        match self {
            Rows::Postgres(rows) => rows.len(),
            #[cfg(feature = "test-hooks")]
            Rows::Simulated(rows) => rows.len(),
        }
    }

    /// The first row, if any.
    pub(crate) fn first(&self) -> Option<RowRef<'_>> {
        self.iter().next()
    }

    /// Every row, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = RowRef<'_>> {
        (0..self.len()).map(move |i| match self {
            Rows::Postgres(rows) => RowRef::Postgres(&rows[i]),
            #[cfg(feature = "test-hooks")]
            Rows::Simulated(rows) => RowRef::Simulated(&rows[i]),
        })
    }
}

/// Column `index` of `row`, named `name` in errors: a value of another
/// type (a table of that name made by something else) is an error, never
/// a panic.
pub(crate) fn column<'a, T: FromSqlOwned>(
    row: impl Into<RowRef<'a>>,
    index: usize,
    name: &'static str,
) -> Result<T, Error> {
    match row.into() {
        RowRef::Postgres(row) => row.try_get(index).map_err(|error| Error::Column {
            column: name,
            error,
        }),
        #[cfg(feature = "test-hooks")]
        RowRef::Simulated(row) => row.get(index, name),
    }
}

/// `params` with their `types`, for an unnamed statement.
pub(crate) fn typed<'a>(types: &[Type], params: &[Param<'a>]) -> Vec<(Param<'a>, Type)> {
    params.iter().copied().zip(types.iter().cloned()).collect()
}
