//! Every test hook in one room: the hidden [`PgRecorder`] calls that make
//! time pass, run a clock fast, pause a process, swap in known-bad
//! statements, and ask how an in-doubt finish resolves. They exist only
//! with the `test-hooks` feature, which the crate's own tests and the stress
//! tool turn on: a production build cannot call them. The switches
//! they flip live below, in `switches.rs`, where the statements and the
//! renewal loop read them.

use crate::attempt::{self, Finish, Lease};
use crate::db::{Connections, Db, Holding, Key};
use crate::error::Error;
use crate::recorder::{Config, PgRecorder};
use crate::sql::Statements;
use async_tasks_recorder::spec::Outcome;
use std::time::Duration;

impl<K: Key> PgRecorder<K> {
    /// Like [`new`](Self::new) with given statements: tests swap in a
    /// known-bad one to show that their checks catch it.
    #[doc(hidden)]
    pub fn with_statements(
        config: tokio_postgres::Config,
        sql: Statements,
        settings: Config,
    ) -> Result<Self, Error> {
        Self::open(config, sql, settings)
    }

    /// A recorder on the simulated database `server` (`sim.rs`), on its
    /// table of `K` ids: the simulation runs the recorder's own code
    /// against it. `settings.pooler` is ignored.
    #[doc(hidden)]
    pub fn simulated(
        server: &std::sync::Arc<crate::sim::Server>,
        settings: Config,
    ) -> Result<Self, Error> {
        let sql = Statements::new("simulated", K::SQL_TYPE);
        let db = Db::simulated(server, sql, K::pg_type(), Connections::of(&settings))?;
        Ok(Self::on(db, &settings))
    }

    /// Test hook: bring back a wrong answer of the client code (`Mutant`),
    /// for the simulation's bites.
    #[doc(hidden)]
    pub fn mutate(&self, mutant: crate::Mutant) {
        self.db.switches.set_mutant(mutant);
    }

    /// Test hook: this recorder judges leases as if `by` had passed on the
    /// database clock (server side); the leases it grants are not moved.
    #[doc(hidden)]
    pub fn shift_clock(&self, by: Duration) {
        self.db.switches.shift_clock(by);
    }

    /// Test hook: this replica's own clock runs `by` ahead. No correct
    /// statement reads it; a known-bad claim does.
    #[doc(hidden)]
    pub fn skew_client_clock(&self, by: Duration) {
        self.db.switches.skew_client_clock(by);
    }

    /// Test hook: stop (or resume) renewing leases, as a paused process would.
    #[doc(hidden)]
    pub fn set_renewing(&self, on: bool) {
        self.db.switches.set_renewing(on);
    }

    /// Test hook: prepare statements under names even behind a pooler
    /// ([`Config::pooler`]), as the crate did before: the defect the
    /// PgBouncer tests must catch.
    #[doc(hidden)]
    pub fn name_statements(&self, on: bool) {
        self.db.switches.set_named_statements(on);
    }

    /// Test hook: what re-reading the row says of a finish by `lease` with
    /// `outcome` (of a revoke if `revoke`): `None` if it has not been
    /// applied and could be sent again, [`Error::InDoubt`] if the row can no
    /// longer tell.
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
        attempt::resolve(&self.db, lease, holding, outcome)
            .await?
            .proved(holding)
    }
}
