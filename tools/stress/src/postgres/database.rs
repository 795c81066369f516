//! The database of a postgres run and the connections to it: the given
//! `--database-url` or a throwaway cluster the run starts (with `--pooler`,
//! behind a PgBouncer in transaction mode), the settings of each kind of
//! connection, and a fresh schema.

use super::sabotage::{self, TASKS};
use crate::options::{Options, ReplicationMode, Sabotage};
use async_tasks_recorder_pg::cluster::{Cluster, Pooler, Replication};
use async_tasks_recorder_pg::{Config as PgConfig, PgRecorder, end_idle_transactions};
use std::cell::Cell;
use std::time::Duration;
use tokio_postgres::{Client, NoTls};

/// The `application_name` of worker connections: the connections the
/// `pg_terminate_backend` fault ends.
pub const WORKER_APP: &str = "stress-worker";
/// The `application_name` of the coordinator's connections.
pub const COORDINATOR_APP: &str = "stress-coordinator";
/// The side effects: one row per committed success, keyed by `(id, fence)`
/// (see the module docs of `postgres`).
const LEDGER_SCHEMA: &str = "CREATE TABLE stress_ledger (id bigint NOT NULL, epoch bigint NOT NULL,
   fence bigint NOT NULL, process bigint NOT NULL, PRIMARY KEY (id, fence))";

/// Server connections of the pooler a `--pooler` run starts.
const POOLER_SIZE: usize = 8;

/// The database a run uses, and the clusters behind it when the run started
/// its own (removed when this is dropped): one, or a primary and its
/// standby for `--failover-every`; with `--pooler`, a PgBouncer in front of
/// the one cluster (stopped first).
pub struct Database {
    /// Where the recorders connect: the database, or the pooler.
    pub url: String,
    /// The database itself, for the coordinator's own connections (faults,
    /// audit), whose named statements a pooler in transaction mode would
    /// split across server sessions.
    pub direct: String,
    /// The recorders reach the database through a pooler.
    pub pooled: bool,
    /// Kept for its `Drop`, which stops it before the clusters.
    _pooler: Option<Pooler>,
    nodes: Vec<Cluster>,
    /// The index in `nodes` of the primary.
    primary: Cell<usize>,
    replication: Replication,
}

impl Database {
    /// The `--database-url`, or a new throwaway cluster (with a standby
    /// for `--failover-every`; clients then connect to whichever accepts
    /// writes), behind a new PgBouncer with `--pooler`.
    pub fn open(options: &Options) -> Result<Database, String> {
        let replication = match options.replication {
            ReplicationMode::Sync => Replication::Synchronous,
            ReplicationMode::Async => Replication::Asynchronous,
        };
        if options.pooler && options.database_url.is_some() {
            return Err(
                "--pooler starts PgBouncer in front of the run's own cluster (no --database-url)"
                    .into(),
            );
        }
        if options.pooler && options.failover_every.is_some() {
            return Err(
                "--pooler fronts one cluster, and --failover-every needs two: choose one".into(),
            );
        }
        let mut database = Database {
            url: String::new(),
            direct: String::new(),
            pooled: false,
            _pooler: None,
            nodes: Vec::new(),
            primary: Cell::new(0),
            replication,
        };
        match &options.database_url {
            Some(url) => database.direct = url.clone(),
            None => {
                let primary = Cluster::start().map_err(|e| e.to_string())?;
                if options.failover_every.is_some() {
                    let standby =
                        Cluster::standby_of(&primary, replication).map_err(|e| e.to_string())?;
                    database.direct = Cluster::primary_conninfo(&[&primary, &standby], "postgres");
                    database.nodes = vec![primary, standby];
                } else {
                    database.direct = primary.conninfo("postgres");
                    database.nodes = vec![primary];
                }
            }
        }
        database.url = database.direct.clone();
        if options.pooler {
            let cluster = &database.nodes[0];
            // A pooler takes no start-up options: the server ends a session
            // frozen in its ledger transaction by its default, as
            // `end_idle_transactions` does on a direct connection.
            cluster
                .psql(
                    "postgres",
                    &format!(
                        "ALTER DATABASE postgres SET idle_in_transaction_session_timeout = '{}ms'",
                        options.lease_ms
                    ),
                )
                .map_err(|e| e.to_string())?;
            let pooler = Pooler::start(cluster, POOLER_SIZE).map_err(|e| e.to_string())?;
            database.url = pooler.conninfo("postgres");
            database.pooled = true;
            database._pooler = Some(pooler);
        }
        Ok(database)
    }

    /// The run's own primary, if it started one.
    pub fn cluster(&self) -> Option<&Cluster> {
        self.nodes.get(self.primary.get())
    }

    /// The run's own standby, if it started one.
    pub fn standby(&self) -> Option<&Cluster> {
        match self.nodes.len() {
            2 => self.nodes.get(1 - self.primary.get()),
            _ => None,
        }
    }

    /// How the standby replicates.
    pub fn replication(&self) -> Replication {
        self.replication
    }

    /// The standby is now the primary.
    pub fn promoted(&self) {
        self.primary.set(1 - self.primary.get());
    }

    /// Settings of the coordinator's own connection named `app`, to the
    /// database itself.
    pub fn admin_config(&self, app: &str) -> Result<tokio_postgres::Config, String> {
        config(&self.direct, app)
    }

    /// A recorder on a fresh table (and, with `ledger`, a fresh empty
    /// ledger): whatever an earlier run left is dropped first.
    pub async fn fresh_recorder(
        &self,
        app: &str,
        lease: Duration,
        ledger: bool,
    ) -> Result<PgRecorder<i64>, String> {
        let client = connect(&self.admin_config(COORDINATOR_APP)?).await?;
        let mut reset = format!(
            "DROP TABLE IF EXISTS {TASKS}{also}; DROP SEQUENCE IF EXISTS \"{TASKS}$fence\";",
            also = if ledger { ", stress_ledger" } else { "" }
        );
        if ledger {
            reset += LEDGER_SCHEMA;
        }
        client
            .batch_execute(&reset)
            .await
            .map_err(|e| e.to_string())?;
        let recorder = recorder(&self.url, app, lease, None, self.pooled)?;
        recorder.install().await.map_err(|e| e.to_string())?;
        Ok(recorder)
    }
}

/// Settings of a connection named `app` to `url`.
pub fn config(url: &str, app: &str) -> Result<tokio_postgres::Config, String> {
    let mut config: tokio_postgres::Config = url
        .parse()
        .map_err(|e| format!("bad --database-url {url:?}: {e}"))?;
    config
        .application_name(app)
        .connect_timeout(Duration::from_secs(2));
    Ok(config)
}

/// The connection of the side effect's transaction. A worker frozen
/// between its fenced finish and the commit holds the id's row lock; the
/// server ends such a session once it has idled in its transaction for a
/// lease, so the id is taken over instead of stalling every competitor.
/// Behind a pooler (`pooled`), which takes no start-up options, the
/// database's default does it ([`Database::open`]).
pub fn ledger_config(
    url: &str,
    lease: Duration,
    pooled: bool,
) -> Result<tokio_postgres::Config, String> {
    let mut config = config(url, WORKER_APP)?;
    if !pooled {
        end_idle_transactions(&mut config, lease);
    }
    Ok(config)
}

/// One connection, driven in the background.
pub async fn connect(config: &tokio_postgres::Config) -> Result<Client, String> {
    let (client, connection) = config.connect(NoTls).await.map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// A recorder named `app` on `url` (a pooler in transaction mode if
/// `pooled`), its statements made known-bad as `sabotage` asks.
pub fn recorder(
    url: &str,
    app: &str,
    lease: Duration,
    sabotage: Option<Sabotage>,
    pooled: bool,
) -> Result<PgRecorder<i64>, String> {
    let settings = PgConfig {
        lease,
        pool_size: 16,
        pooler: pooled,
        ..PgConfig::default()
    };
    PgRecorder::with_statements(config(url, app)?, sabotage::statements(sabotage), settings)
        .map_err(|e| e.to_string())
}
