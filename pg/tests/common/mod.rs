//! One throwaway cluster per test binary, one table per test.
#![allow(dead_code)]

pub mod adapter;
pub mod fenced;
pub mod proxy;

use async_tasks_recorder_pg::cluster::{Cluster, Pooler};
use async_tasks_recorder_pg::{Config, Key, PgRecorder, Statements};
use std::future::Future;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// The binary's cluster. A static is never dropped: the cluster's watchdog
/// stops the server when this process exits.
pub fn cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(|| Cluster::start().unwrap_or_else(|e| panic!("{e}")))
}

/// The database the pooled recorders use: its defaults bound statements
/// and lock waits on the server, as `ALTER ROLE … SET` would in production
/// (a pooler takes no start-up options).
pub const POOLED_DATABASE: &str = "pooled";

/// The binary's PgBouncer, in transaction mode with a pool of 2 server
/// connections, in front of [`cluster`]; stopped by its watchdog when this
/// process exits.
pub fn pooler() -> &'static Pooler {
    static POOLER: OnceLock<Pooler> = OnceLock::new();
    POOLER.get_or_init(|| {
        let cluster = cluster();
        for sql in [
            format!("CREATE DATABASE {POOLED_DATABASE}"),
            format!("ALTER DATABASE {POOLED_DATABASE} SET statement_timeout = '20s'"),
            format!("ALTER DATABASE {POOLED_DATABASE} SET lock_timeout = '5s'"),
        ] {
            cluster
                .psql("postgres", &sql)
                .unwrap_or_else(|e| panic!("{e}"));
        }
        Pooler::start(cluster, 2).unwrap_or_else(|e| panic!("{e}"))
    })
}

/// A fresh table name, unique in this binary.
pub fn table(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}_{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

pub fn settings(lease: Duration) -> Config {
    Config {
        lease,
        pool_size: 8,
        ..Config::default()
    }
}

/// A recorder on a new table, installed.
pub async fn recorder<K: Key>(prefix: &str, settings: Config) -> PgRecorder<K> {
    recorder_on(&table(prefix), settings).await
}

/// A recorder on table `name`, installed.
pub async fn recorder_on<K: Key>(name: &str, settings: Config) -> PgRecorder<K> {
    let recorder = PgRecorder::new(cluster().config("postgres"), name, settings).unwrap();
    recorder.install().await.unwrap();
    recorder
}

/// A recorder on table `table` with the given statements (installed).
pub async fn with_statements<K: Key>(sql: Statements, settings: Config) -> PgRecorder<K> {
    with_statements_on(cluster().config("postgres"), sql, settings).await
}

/// A recorder of `config` with the given statements (installed).
pub async fn with_statements_on<K: Key>(
    config: tokio_postgres::Config,
    sql: Statements,
    settings: Config,
) -> PgRecorder<K> {
    let recorder = PgRecorder::with_statements(config, sql, settings).unwrap();
    recorder.install().await.unwrap();
    recorder
}

/// Polls `future` until it has suspended `k + 1` times, then drops it:
/// its output if it completed first (a caller that gives up at its k-th
/// await point).
pub async fn drop_at<F: Future>(k: u64, future: F) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    let mut suspended = 0;
    std::future::poll_fn(|cx| match future.as_mut().poll(cx) {
        std::task::Poll::Ready(output) => std::task::Poll::Ready(Some(output)),
        std::task::Poll::Pending if suspended == k => std::task::Poll::Ready(None),
        std::task::Poll::Pending => {
            suspended += 1;
            std::task::Poll::Pending
        }
    })
    .await
}

/// Bounds a test step: a hung backend fails within `secs` naming `what`.
pub async fn within<T>(secs: u64, what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), future)
        .await
        .unwrap_or_else(|_| panic!("timed out after {secs}s: {what}"))
}

/// A plain client of `config`, its connection driven in the background.
pub async fn connect_to(config: &tokio_postgres::Config) -> tokio_postgres::Client {
    let (client, connection) = config.connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

/// Another session's lock on one row, held until [`release`](Self::release):
/// every statement that writes the row waits behind it.
pub struct RowLock(tokio_postgres::Client);

impl RowLock {
    pub async fn take(table: &str, id: i64) -> RowLock {
        let client = connect_to(&cluster().config("postgres")).await;
        client
            .batch_execute(&format!(
                "BEGIN; SELECT 1 FROM {table} WHERE id = {id} FOR UPDATE"
            ))
            .await
            .unwrap();
        RowLock(client)
    }

    pub async fn release(self) {
        self.0.batch_execute("ROLLBACK").await.unwrap();
    }
}
