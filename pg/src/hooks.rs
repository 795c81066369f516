//! Every test hook in one room: the three switches a test flips to make
//! time pass, a clock run fast, or a process pause, and the hidden
//! [`PgRecorder`] calls that flip them, swap in known-bad statements, and
//! ask how an in-doubt finish resolves. A production caller needs none of
//! them: they stay hidden from the docs.
//!
//! The switches live here and are read below, by the statements
//! (`db.rs`: the shift, the client clock) and by the renewal loop
//! (`attempt.rs`: renewing).

use crate::attempt::{self, Finish, Lease};
use crate::db::{Holding, Key};
use crate::error::Error;
use crate::recorder::{Config, PgRecorder};
use crate::sql::Statements;
use async_tasks_recorder::spec::Outcome;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, SystemTime};

/// The test switches of one recorder, shared by its clones and attempts.
pub(crate) struct Hooks {
    /// Microseconds added to the database clock in every statement.
    shift_micros: AtomicI64,
    /// When false, leases are not renewed, as if this replica's process
    /// were paused (a GC pause, SIGSTOP) while its tasks run.
    renewing: AtomicBool,
    /// Microseconds added to this replica's clock, which only a known-bad
    /// claim statement reads.
    client_skew_micros: AtomicI64,
}

impl Default for Hooks {
    fn default() -> Self {
        Hooks {
            shift_micros: AtomicI64::new(0),
            renewing: AtomicBool::new(true),
            client_skew_micros: AtomicI64::new(0),
        }
    }
}

/// `by` in microseconds, saturating.
fn saturating_micros(by: Duration) -> i64 {
    i64::try_from(by.as_micros()).unwrap_or(i64::MAX)
}

impl Hooks {
    /// The shift parameter of every statement that judges a lease.
    pub(crate) fn shift(&self) -> i64 {
        self.shift_micros.load(Ordering::Relaxed)
    }

    /// This replica's clock, skewed: the claim's client-clock parameter.
    pub(crate) fn client_now(&self) -> SystemTime {
        let skew = self.client_skew_micros.load(Ordering::Relaxed);
        SystemTime::now() + Duration::from_micros(skew.max(0) as u64)
    }

    /// Whether leases are renewed.
    pub(crate) fn renewing(&self) -> bool {
        self.renewing.load(Ordering::Relaxed)
    }
}

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

    /// Test hook: this recorder judges leases as if `by` had passed on the
    /// database clock (server side); the leases it grants are not moved.
    #[doc(hidden)]
    pub fn shift_clock(&self, by: Duration) {
        let hooks = &self.db.hooks;
        hooks
            .shift_micros
            .store(saturating_micros(by), Ordering::Relaxed);
    }

    /// Test hook: this replica's own clock runs `by` ahead. No correct
    /// statement reads it; a known-bad claim does.
    #[doc(hidden)]
    pub fn skew_client_clock(&self, by: Duration) {
        let hooks = &self.db.hooks;
        hooks
            .client_skew_micros
            .store(saturating_micros(by), Ordering::Relaxed);
    }

    /// Test hook: stop (or resume) renewing leases, as a paused process would.
    #[doc(hidden)]
    pub fn set_renewing(&self, on: bool) {
        self.db.hooks.renewing.store(on, Ordering::Relaxed);
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
        attempt::resolve(&self.db, lease, holding, outcome).await
    }
}
