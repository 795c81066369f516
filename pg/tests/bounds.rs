//! Every call is bounded: a row lock held by a frozen holder, a pool
//! exhausted by calls waiting on it, a server that stops answering without
//! closing anything, a server that accepts and never answers. Each test
//! names the bound it shows, and fails (rather than hangs) if the call
//! does not return.

mod common;

use async_tasks_recorder_pg::{
    Bound, Bounds, Config, Error, LaunchRefusal, Outcome, PgRecorder, Refused, Statements,
    TaskState,
};
use common::proxy::Proxy;
use common::{RowLock, cluster, recorder_on, settings, table, within};
use std::time::Duration;

/// Settings with a pool of `pool_size`, leases of `lease`, and `bounds`.
fn bounded(lease: Duration, pool_size: usize, bounds: Bounds) -> Config {
    Config {
        pool_size,
        bounds,
        ..settings(lease)
    }
}

/// A launch of `id` that does nothing, as a task: its answer.
fn launch(
    recorder: &PgRecorder<i64>,
    id: i64,
) -> tokio::task::JoinHandle<Result<(), Refused<LaunchRefusal>>> {
    let recorder = recorder.clone();
    tokio::spawn(async move {
        recorder
            .launch(id, |_| async { Ok::<(), ()>(()) })
            .await
            .map(drop)
    })
}

/// Two launches of an id whose row another session holds locked, with a
/// pool of two: each waits on the lock up to the lock bound, then is
/// refused by the committed row. Meanwhile an unrelated id is answered.
/// (Before the lock bound, both launches held both connections until the
/// lock was released, and the query of id 2 hung.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_behind_a_frozen_row_lock_are_refused_within_the_lock_bound() {
    let lock_bound = Duration::from_millis(300);
    let bounds = Bounds {
        lock: Some(lock_bound),
        ..Bounds::default()
    };
    let name = table("frozenrow");
    let recorder = recorder_on::<i64>(&name, bounded(Duration::from_secs(30), 2, bounds)).await;
    let holder = recorder.claim(1).await.unwrap().unwrap();
    let lock = RowLock::take(&name, 1).await;
    let launches = [launch(&recorder, 1), launch(&recorder, 1)];
    let other = within(5, "a query of an unrelated id", recorder.query(&2)).await;
    assert_eq!(other.unwrap(), TaskState::NotFound);
    for launched in launches {
        let answer = within(5, "a launch of a locked id", launched)
            .await
            .unwrap();
        assert!(
            matches!(answer, Err(Refused::By(LaunchRefusal::Working))),
            "id 1: a launch behind a frozen lock answered {answer:?}"
        );
    }
    lock.release().await;
    drop(holder);
}

/// Calls that wait on a locked row for long (a lock bound of 20 s) hold
/// every connection of the pool; the lease of another id is still renewed,
/// on connections of its own. (Before the renewal pool, its renewals queued
/// behind the waiting calls and the lease was lost.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewals_have_connections_of_their_own() {
    let lease = Duration::from_millis(900);
    let bounds = Bounds {
        statement: Some(Duration::from_secs(30)),
        lock: Some(Duration::from_secs(20)),
        ..Bounds::default()
    };
    let name = table("renewpool");
    let recorder = recorder_on::<i64>(&name, bounded(lease, 2, bounds)).await;
    let renewed = recorder.claim(2).await.unwrap().unwrap();
    let holder = recorder.claim(1).await.unwrap().unwrap();
    let lock = RowLock::take(&name, 1).await;
    // Their claims wait on the lock, holding both connections of the pool.
    let launches = [launch(&recorder, 1), launch(&recorder, 1)];
    tokio::time::sleep(lease * 3).await;
    assert!(
        !renewed.lease().is_lost(),
        "id 2: the lease was lost while calls held the pool"
    );
    lock.release().await;
    for launched in launches {
        let _ = within(30, "a launch of a released id", launched).await;
    }
    let finish = within(30, "the renewed finish", renewed.finish(Outcome::Ok)).await;
    assert_eq!(finish.unwrap(), async_tasks_recorder_pg::Finish::Applied);
    drop(holder);
}

/// A recorder through `proxy` on a fresh installed table, with a statement
/// bound of `statement`.
async fn through(proxy: &Proxy, statement: Duration) -> PgRecorder<i64> {
    let bounds = Bounds {
        statement: Some(statement),
        ..Bounds::default()
    };
    let recorder = PgRecorder::<i64>::with_statements(
        proxy.config(cluster()),
        Statements::new(&table("partition"), "bigint"),
        bounded(Duration::from_secs(30), 2, bounds),
    )
    .unwrap();
    recorder.install().await.unwrap();
    recorder
}

/// A partition that neither answers nor resets: a finish sent into it on an
/// open connection is in doubt, never answered by a guess; a claim, whose
/// read meets the partition before any write is sent, a read, a wait and a
/// listing each return a timeout (of the statement, or of the pool once no
/// connection can be opened), and nothing is in doubt. (Before the
/// bounds, each of them hung until the partition healed.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_that_never_answers_bounds_every_call() {
    let bound = Duration::from_millis(500);
    let proxy = Proxy::start(cluster());
    let recorder = through(&proxy, bound).await;
    let held = recorder.claim(1).await.unwrap().unwrap();
    proxy.freeze();
    let finished = within(15, "a finish in a partition", held.finish(Outcome::Ok)).await;
    match finished {
        Err(error) => assert!(
            error.is_in_doubt(),
            "id 1: a finish sent into a partition answered {error}, not in doubt"
        ),
        Ok(answer) => panic!("id 1: a finish in a partition answered {answer:?}"),
    }
    let claimed = within(5, "a claim in a partition", recorder.claim(2)).await;
    match claimed {
        Err(error @ Error::Timeout { .. }) => assert!(
            !error.is_in_doubt(),
            "id 2: a claim that sent no write is in doubt"
        ),
        Err(error) => panic!("id 2: a claim in a partition answered {error}"),
        Ok(answer) => panic!(
            "id 2: a claim in a partition answered {:?}",
            answer.map(|a| a.lease().clone())
        ),
    }
    let query = within(5, "a query in a partition", recorder.query(&1)).await;
    assert!(
        matches!(query, Err(Error::Timeout { .. })),
        "id 1: a query in a partition answered {query:?}"
    );
    let wait = within(5, "a wait in a partition", recorder.wait(&1)).await;
    assert!(
        matches!(wait, Err(Error::Timeout { .. })),
        "id 1: a wait in a partition answered {wait:?}"
    );
    let listed = within(
        5,
        "a listing in a partition",
        recorder.list(TaskState::Working),
    )
    .await;
    assert!(matches!(listed, Err(Error::Timeout { .. })), "{listed:?}");
    proxy.thaw();
}

/// A server that accepts connections and never answers (not even the
/// start-up): the call gives up within the connection bound, and says so;
/// nothing was sent, so nothing is in doubt. (Before, `connect_timeout`
/// covered only the socket's connect, and the query hung.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_accepts_and_never_answers_bounds_the_connection() {
    let bound = Duration::from_millis(400);
    let proxy = Proxy::start(cluster());
    proxy.freeze();
    let bounds = Bounds {
        connection: Some(bound),
        ..Bounds::default()
    };
    let recorder = PgRecorder::<i64>::new(
        proxy.config(cluster()),
        &table("mute"),
        bounded(Duration::from_secs(30), 2, bounds),
    )
    .unwrap();
    let query = within(5, "a query of a mute server", recorder.query(&1)).await;
    match query {
        Err(
            error @ Error::Timeout {
                bound: Bound::Connection,
                ..
            },
        ) => assert!(!error.is_in_doubt()),
        other => panic!("id 1: a query of a mute server answered {other:?}"),
    }
    let claimed = within(5, "a claim to a mute server", recorder.claim(1)).await;
    match claimed {
        Err(error) => assert!(!error.is_in_doubt(), "id 1: an unsent claim is in doubt"),
        Ok(answer) => panic!(
            "id 1: a claim to a mute server answered {:?}",
            answer.map(|a| a.lease().clone())
        ),
    }
    proxy.thaw();
}
