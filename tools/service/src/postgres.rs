//! The PostgreSQL backend: a [`PgRecorder`] shared by every replica, and a
//! ledger table in the same database. A payment's ledger row is written in
//! the transaction of its fenced finish ([`Attempt::finish_in`]) and
//! committed only when the finish is `Applied`, so a replica that lost its
//! lease (stalled, or killed mid-payment) pays nothing; a refund is written
//! the same way with the revoke's finish.

use crate::backend::{Backend, BackendError, Counts, Page, Payment, Revoked, Started, Work};
use crate::trace;
use async_tasks_recorder_pg::{
    Attempt, Config, Finish, LaunchRefusal, Outcome, PgRecorder, RevokeRefusal, Sweeper, TaskState,
    end_idle_transactions,
};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::NoTls;
use tracing::{Instrument, Span};

/// The recorder's table.
pub const TABLE: &str = "payments";
/// The ledger: one row per side effect, keyed by the attempt's fence, not
/// by `(id, epoch)`: a unique `(id, epoch)` would turn a double payment
/// into a constraint error and hide it from whoever audits the ledger.
pub const LEDGER: &str = "payments_ledger";
const LEDGER_SCHEMA: &str = "BEGIN;
    SELECT pg_advisory_xact_lock(hashtext('payments_ledger'));
    CREATE TABLE IF NOT EXISTS payments_ledger (
        id text NOT NULL, epoch bigint NOT NULL, fence bigint NOT NULL,
        entry text NOT NULL CHECK (entry IN ('pay', 'refund')),
        written timestamptz NOT NULL DEFAULT clock_timestamp(),
        PRIMARY KEY (id, fence));
    COMMIT;";
const INSERT: &str =
    "INSERT INTO payments_ledger (id, epoch, fence, entry) VALUES ($1, $2, $3, $4)";
/// Ledger connections: one per payment being committed.
const LEDGER_POOL: usize = 8;
/// Rows a sweep moves at a time.
const SWEEP_LIMIT: NonZeroU32 = NonZeroU32::new(1000).unwrap();

/// The PostgreSQL backend. Clones share the recorder, the pool and the sweeper.
#[derive(Clone)]
pub struct Postgres {
    recorder: PgRecorder<String>,
    ledger: Pool,
    work: Work,
    _sweeper: Arc<Sweeper>,
}

impl Postgres {
    /// Installs the recorder's table and the ledger (every replica may, at
    /// once), and starts a sweeper every tenth of `lease`, so the ids of a
    /// replica that died read `Failed` within a lease and a tenth.
    pub async fn open(
        config: tokio_postgres::Config,
        lease: Duration,
        work: Work,
    ) -> Result<Postgres, String> {
        let settings = Config {
            lease,
            ..Config::default()
        };
        let recorder = PgRecorder::<String>::new(config.clone(), TABLE, settings)
            .map_err(|e| e.to_string())?;
        recorder.install().await.map_err(|e| e.to_string())?;
        install_ledger(&config).await?;
        let period = (lease / 10).max(Duration::from_millis(10));
        let sweeper = recorder
            .sweep_every(period, SWEEP_LIMIT)
            .map_err(|e| e.to_string())?;
        // A replica frozen between its finish and its commit holds the id's
        // row lock; the server ends such a session after a lease.
        let mut ledger_config = config;
        end_idle_transactions(&mut ledger_config, lease);
        let manager = Manager::from_config(
            ledger_config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let ledger = Pool::builder(manager)
            .max_size(LEDGER_POOL)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Postgres {
            recorder,
            ledger,
            work,
            _sweeper: Arc::new(sweeper),
        })
    }

    /// The attempt's work, then its finish: a failure finishes `Err`; a
    /// success commits its ledger row with the fenced finish. `span`, the
    /// one it runs in, gets the outcome.
    async fn pay(self, attempt: Attempt<String>, span: Span) {
        tokio::time::sleep(self.work.delay).await;
        let finished = if self.work.fails() {
            span.record("outcome", "failed");
            let failed = attempt.finish(Outcome::Err).await;
            failed.map_err(BackendError::from)
        } else {
            let paid = self.commit_with(attempt, "pay").await;
            if let Ok(finish) = &paid {
                span.record("outcome", tracing::field::debug(finish));
            }
            paid
        };
        if let Err(e) = finished {
            tracing::warn!(error = e.message, "payment not recorded");
        }
    }

    /// Writes the ledger row `entry` of `attempt` and its fenced finish in
    /// one transaction, committed only if the finish applied. Any error on
    /// the way drops the attempt, which settles it without waiting for its
    /// lease.
    async fn commit_with(
        &self,
        attempt: Attempt<String>,
        entry: &str,
    ) -> Result<Finish, BackendError> {
        let lease = attempt.lease().clone();
        let mut client = self.ledger.get().await.map_err(pool_error)?;
        let tx = client.transaction().await.map_err(db_error)?;
        let (epoch, fence) = (lease.epoch() as i64, lease.fence() as i64);
        tx.execute(INSERT, &[lease.id(), &epoch, &fence, &entry])
            .await
            .map_err(db_error)?;
        let finish = attempt.finish_in(&tx, Outcome::Ok).await?;
        match finish {
            Finish::Applied => {
                if let Err(e) = tx.commit().await {
                    // The COMMIT was sent and its answer lost: only the row
                    // can say whether the payment and its success committed.
                    tracing::warn!(error = %e, "the commit's answer was lost; resolving by the row");
                    return Ok(self.recorder.resolve_commit(&lease, Outcome::Ok).await?);
                }
            }
            Finish::Stale => tx.rollback().await.map_err(db_error)?,
        }
        Ok(finish)
    }
}

fn pool_error(e: impl std::fmt::Display) -> BackendError {
    BackendError {
        message: format!("no ledger connection: {e}"),
        in_doubt: false,
    }
}

fn db_error(e: tokio_postgres::Error) -> BackendError {
    async_tasks_recorder_pg::Error::Db(e).into()
}

/// Creates the ledger if absent; replicas starting together wait for one
/// another under an advisory lock instead of racing on the catalog.
async fn install_ledger(config: &tokio_postgres::Config) -> Result<(), String> {
    let (client, connection) = config.connect(NoTls).await.map_err(|e| e.to_string())?;
    let driver = tokio::spawn(connection);
    let installed = client.batch_execute(LEDGER_SCHEMA).await;
    drop(client);
    let _ = driver.await;
    installed.map_err(|e| format!("install {LEDGER}: {e}"))
}

impl Backend for Postgres {
    fn name(&self) -> &'static str {
        "postgres"
    }

    async fn start(&self, id: String) -> Result<Started, BackendError> {
        match self.recorder.claim(id.clone()).await? {
            Ok(attempt) => {
                let lease = attempt.lease();
                let payment = Payment {
                    id,
                    state: TaskState::Working,
                    epoch: lease.epoch(),
                    fence: Some(lease.fence()),
                };
                let span = trace::attempt(&payment.id, lease.epoch(), lease.fence());
                let paying = self.clone().pay(attempt, span.clone());
                tokio::spawn(paying.instrument(span));
                Ok(Started::Started(payment))
            }
            Err(LaunchRefusal::Working) => Ok(Started::Refused(self.read(&id).await?)),
            Err(LaunchRefusal::Success) => Ok(Started::Paid(self.read(&id).await?)),
        }
    }

    async fn read(&self, id: &str) -> Result<Payment, BackendError> {
        let stored = self.recorder.read(&id.to_string()).await?;
        Ok(Payment {
            id: id.to_string(),
            state: stored.phase.state(),
            epoch: stored.epoch,
            fence: (stored.fence > 0).then_some(stored.fence),
        })
    }

    async fn wait(&self, id: &str) -> Result<TaskState, BackendError> {
        Ok(self.recorder.wait(&id.to_string()).await?)
    }

    async fn revoke(&self, id: String) -> Result<Revoked, BackendError> {
        match self.recorder.revoke_begin(id.clone()).await? {
            Ok(attempt) => match self.commit_with(attempt, "refund").await? {
                Finish::Applied => Ok(Revoked::Revoked(self.read(&id).await?)),
                Finish::Stale => Err(BackendError {
                    message: format!("the refund of {id} lost its lease; nothing was refunded"),
                    in_doubt: false,
                }),
            },
            Err(RevokeRefusal::NotSuccess | RevokeRefusal::Revoking) => {
                Ok(Revoked::Refused(self.read(&id).await?))
            }
        }
    }

    async fn list_page(
        &self,
        state: TaskState,
        after: &str,
        limit: usize,
    ) -> Result<Page, BackendError> {
        let after = (!after.is_empty()).then(|| after.to_owned());
        Ok(self
            .recorder
            .list_page(state, after.as_ref(), limit)
            .await?)
    }

    async fn counts(&self) -> Result<Counts, BackendError> {
        Ok(Counts {
            working: self.recorder.count(TaskState::Working).await?,
            success: self.recorder.count(TaskState::Success).await?,
            failed: self.recorder.count(TaskState::Failed).await?,
        })
    }
}
