//! Every rule of the spec, on a real cluster started by the test binary.

mod common;

use async_tasks_recorder::spec::{Outcome, Phase};
use async_tasks_recorder_pg::{
    Error, Finish, LaunchRefusal, PgRecorder, Refused, RevokeRefusal, TaskState,
};
use common::{recorder, settings, within};
use std::time::Duration;

const LEASE: Duration = Duration::from_secs(30);

async fn ok(recorder: &PgRecorder<String>, id: &str) -> Finish {
    let (output, finish) = recorder
        .launch_block(id.to_string(), |_| async { Ok::<_, ()>(()) })
        .await
        .unwrap_or_else(|e| panic!("launch {id}: {e:?}"));
    assert!(output.is_ok());
    finish.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_is_recorded_once_and_refuses_relaunch() {
    within(60, "success_is_recorded_once", async {
        let r = recorder::<String>("rules", settings(LEASE)).await;
        assert_eq!(r.query(&"a".into()).await.unwrap(), TaskState::NotFound);
        assert_eq!(ok(&r, "a").await, Finish::Applied);
        assert_eq!(r.query(&"a".into()).await.unwrap(), TaskState::Success);
        let again = r
            .launch_block("a".into(), |_| async { Ok::<_, ()>(()) })
            .await;
        assert!(
            matches!(again, Err(Refused::By(LaunchRefusal::Success))),
            "{again:?}"
        );
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_id_is_relaunched_with_a_greater_fence() {
    within(60, "a_failed_id_is_relaunched", async {
        let r = recorder::<String>("rules", settings(LEASE)).await;
        let mut first = 0;
        let (output, finish) = r
            .launch_block("f".into(), |lease| {
                first = lease.fence();
                async { Err::<(), _>("boom") }
            })
            .await
            .unwrap();
        assert!(output.is_err());
        assert_eq!(finish.unwrap(), Finish::Applied);
        assert_eq!(r.query(&"f".into()).await.unwrap(), TaskState::Failed);
        let attempt = r.claim("f".into()).await.unwrap().unwrap();
        assert!(attempt.lease().fence() > first);
        assert_eq!(attempt.lease().epoch(), 0);
        assert_eq!(r.query(&"f".into()).await.unwrap(), TaskState::Working);
        // A second claim while the first is live is refused with Working.
        assert!(matches!(
            r.claim("f".into()).await.unwrap(),
            Err(LaunchRefusal::Working)
        ));
        assert_eq!(attempt.finish(Outcome::Ok).await.unwrap(), Finish::Applied);
        assert_eq!(r.query(&"f".into()).await.unwrap(), TaskState::Success);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_opens_a_new_epoch_and_is_exclusive() {
    within(60, "revoke_opens_a_new_epoch", async {
        let r = recorder::<String>("rules", settings(LEASE)).await;
        let refused = r.revoke("r".into(), |_| async { Ok::<_, ()>(()) }).await;
        assert!(matches!(
            refused,
            Err(Refused::By(RevokeRefusal::NotSuccess))
        ));
        ok(&r, "r").await;
        let revoking = r.revoke_begin("r".into()).await.unwrap().unwrap();
        // While revoking: reads Success, launches refused with Success, a
        // second revoke refused with Revoking.
        assert_eq!(r.query(&"r".into()).await.unwrap(), TaskState::Success);
        assert!(matches!(
            r.claim("r".into()).await.unwrap(),
            Err(LaunchRefusal::Success)
        ));
        assert!(matches!(
            r.revoke_begin("r".into()).await.unwrap(),
            Err(RevokeRefusal::Revoking)
        ));
        let fence = revoking.lease().fence();
        assert_eq!(revoking.finish(Outcome::Ok).await.unwrap(), Finish::Applied);
        let stored = r.read(&"r".into()).await.unwrap();
        assert_eq!((stored.phase, stored.epoch), (Phase::NotFound, 1));
        // The new epoch: one more success, under a greater fence.
        let attempt = r.claim("r".into()).await.unwrap().unwrap();
        assert_eq!(attempt.lease().epoch(), 1);
        assert!(attempt.lease().fence() > fence);
        attempt.finish(Outcome::Ok).await.unwrap();
        // A failed revoke leaves Success.
        let (output, finish) = r
            .revoke("r".into(), |_| async { Err::<(), _>(()) })
            .await
            .unwrap();
        assert!(output.is_err());
        assert_eq!(finish.unwrap(), Finish::Applied);
        let stored = r.read(&"r".into()).await.unwrap();
        assert_eq!((stored.phase, stored.epoch), (Phase::Success, 1));
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finish_is_applied_once() {
    within(60, "a_finish_is_applied_once", async {
        let r = recorder::<String>("rules", settings(LEASE)).await;
        let attempt = r.claim("once".into()).await.unwrap().unwrap();
        let lease = attempt.lease().clone();
        assert_eq!(attempt.finish(Outcome::Err).await.unwrap(), Finish::Applied);
        // Another attempt on the same lease (e.g. a retry after a crash of
        // the finisher) changes nothing.
        let relaunch = r.claim("once".into()).await.unwrap().unwrap();
        assert!(relaunch.lease().fence() > lease.fence());
        drop(relaunch);
        // Dropping an unfinished attempt finishes it with Err in the background.
        let state = within(10, "dropped attempt settles", async {
            loop {
                let state = r.query(&"once".into()).await.unwrap();
                if state != TaskState::Working {
                    return state;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
        assert_eq!(state, TaskState::Failed);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_returns_the_state_after_the_finish() {
    within(60, "wait_returns_the_state", async {
        let r = recorder::<String>("rules", settings(LEASE)).await;
        assert_eq!(r.wait(&"w".into()).await.unwrap(), TaskState::NotFound);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let lease = r
            .launch("w".into(), |_| async move {
                rx.await.ok();
                Ok::<_, ()>(())
            })
            .await
            .unwrap();
        assert_eq!(lease.epoch(), 0);
        let waiter = {
            let r = r.clone();
            tokio::spawn(async move { r.wait(&"w".into()).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished());
        tx.send(()).unwrap();
        let state = within(10, "wait for w", waiter).await.unwrap().unwrap();
        assert_eq!(state, TaskState::Success);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_expires_a_dead_holder() {
    within(60, "wait_expires_a_dead_holder", async {
        let r = recorder::<i64>("rules", settings(Duration::from_millis(300))).await;
        r.set_renewing(false);
        let attempt = r.claim(7).await.unwrap().unwrap();
        // The holder never finishes (a dead process): wait expires it.
        let state = within(10, "wait for 7", r.wait(&7)).await.unwrap();
        assert_eq!(state, TaskState::Failed);
        assert_eq!(attempt.finish(Outcome::Ok).await.unwrap(), Finish::Stale);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_and_count_by_state_with_integer_keys() {
    within(60, "list_and_count", async {
        let r = recorder::<i64>("rules", settings(LEASE)).await;
        for id in 0..30i64 {
            let attempt = r.claim(id).await.unwrap().unwrap();
            if id % 3 != 0 {
                let outcome = if id % 3 == 1 {
                    Outcome::Ok
                } else {
                    Outcome::Err
                };
                attempt.finish(outcome).await.unwrap();
            } else {
                std::mem::forget(attempt);
            }
        }
        let mut failed = r.list(TaskState::Failed).await.unwrap();
        failed.sort();
        assert_eq!(failed, (0..30).filter(|i| i % 3 == 2).collect::<Vec<_>>());
        assert_eq!(r.count(TaskState::Success).await.unwrap(), 10);
        assert_eq!(r.count(TaskState::Working).await.unwrap(), 10);
        assert_eq!(
            r.list(TaskState::NotFound).await.unwrap(),
            Vec::<i64>::new()
        );
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_an_error_value() {
    let config = common::cluster().config("postgres");
    let bad = PgRecorder::<String>::new(config.clone(), "tasks; DROP TABLE x", settings(LEASE));
    assert!(matches!(bad, Err(Error::BadTableName(_))));
    let zero = PgRecorder::<String>::new(config, "tasks", settings(Duration::ZERO));
    assert!(matches!(zero, Err(Error::BadDuration(_))));
    // A server that is not there: an error, not a panic or a hang.
    let mut nowhere = tokio_postgres::Config::new();
    nowhere
        .host_path("/nonexistent-socket-dir")
        .user("x")
        .dbname("x");
    let r = PgRecorder::<String>::new(nowhere, "tasks", settings(LEASE)).unwrap();
    let result = within(20, "query without a server", r.query(&"a".into())).await;
    assert!(
        matches!(result, Err(Error::Db(_) | Error::Pool(_))),
        "{result:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_doubt_finish_is_resolved_by_rereading_the_row() {
    within(60, "in-doubt resolution", async {
        let r = recorder::<String>("rules", settings(LEASE)).await;
        let attempt = r.claim("d".into()).await.unwrap().unwrap();
        let lease = attempt.lease().clone();
        // Not applied yet: the finish may be sent again.
        assert_eq!(
            r.resolve_finish(&lease, false, Outcome::Ok).await.unwrap(),
            None
        );
        assert_eq!(attempt.finish(Outcome::Ok).await.unwrap(), Finish::Applied);
        // Applied: a re-read says so, also after a revoke began.
        let applied = Some(Finish::Applied);
        assert_eq!(
            r.resolve_finish(&lease, false, Outcome::Ok).await.unwrap(),
            applied
        );
        let revoking = r.revoke_begin("d".into()).await.unwrap().unwrap();
        assert_eq!(
            r.resolve_finish(&lease, false, Outcome::Ok).await.unwrap(),
            applied
        );
        let revoke_lease = revoking.lease().clone();
        assert_eq!(revoking.finish(Outcome::Ok).await.unwrap(), Finish::Applied);
        assert_eq!(
            r.resolve_finish(&revoke_lease, true, Outcome::Ok)
                .await
                .unwrap(),
            applied
        );
        // A zombie's Ok in the same epoch resolves Stale.
        let later = PgRecorder::<String>::new(
            common::cluster().config("postgres"),
            &common::table("rules"),
            settings(LEASE),
        )
        .unwrap();
        later.install().await.unwrap();
        let zombie = later.claim("z".into()).await.unwrap().unwrap();
        let zombie_lease = zombie.lease().clone();
        later.shift_clock(Duration::from_secs(3600));
        let holder = later.claim("z".into()).await.unwrap().unwrap();
        let stale = Some(Finish::Stale);
        assert_eq!(
            later
                .resolve_finish(&zombie_lease, false, Outcome::Ok)
                .await
                .unwrap(),
            stale
        );
        holder.finish(Outcome::Ok).await.unwrap();
        assert_eq!(
            later
                .resolve_finish(&zombie_lease, false, Outcome::Ok)
                .await
                .unwrap(),
            stale
        );
        drop(zombie);
    })
    .await
}

/// The server ends every connection of the recorder (as a restart or a
/// network cut would) between the claim and the finish: the finish fails
/// in transit, is resolved by re-reading the row, sent again, and applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finish_across_a_lost_connection_is_applied_once() {
    within(60, "finish across connection loss", async {
        // Its own application name, so that only its connections are cut.
        let mut config = common::cluster().config("postgres");
        config.application_name("atr_connection_cut");
        let r = PgRecorder::<String>::new(config, &common::table("cut"), settings(LEASE)).unwrap();
        r.install().await.unwrap();
        let attempt = r.claim("cut".into()).await.unwrap().unwrap();
        common::cluster()
            .psql(
                "postgres",
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE application_name = 'atr_connection_cut'",
            )
            .unwrap();
        assert_eq!(attempt.finish(Outcome::Ok).await.unwrap(), Finish::Applied);
        assert_eq!(r.query(&"cut".into()).await.unwrap(), TaskState::Success);
        // A read after every connection broke is retried on fresh ones.
        common::cluster()
            .psql(
                "postgres",
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE application_name = 'atr_connection_cut'",
            )
            .unwrap();
        assert_eq!(r.query(&"cut".into()).await.unwrap(), TaskState::Success);
    })
    .await
}

/// Nobody touches a dead holder's id: the background sweeper alone moves
/// it to `Failed` once its lease has run out, and stops when dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweeper_expires_a_dead_holder_that_nobody_touches_and_stops_when_dropped() {
    within(60, "the sweeper", async {
        let lease = Duration::from_millis(300);
        let r = recorder::<i64>("sweeper", settings(lease)).await;
        r.set_renewing(false);
        let period = Duration::from_millis(50);
        let every = std::num::NonZeroU32::new(100).unwrap();
        let sweeper = r.sweep_every(period, every).unwrap();
        let dead = r.claim(7).await.unwrap().unwrap();
        assert_eq!(r.query(&7).await.unwrap(), TaskState::Working);
        let mut state = TaskState::Working;
        for _ in 0..100 {
            state = r.query(&7).await.unwrap();
            if state != TaskState::Working {
                break;
            }
            tokio::time::sleep(period).await;
        }
        assert_eq!(state, TaskState::Failed, "id 7 was never swept");
        assert_eq!(dead.finish(Outcome::Ok).await.unwrap(), Finish::Stale);
        drop(sweeper);
        let dead = r.claim(8).await.unwrap().unwrap();
        tokio::time::sleep(lease + period * 6).await;
        assert_eq!(
            r.query(&8).await.unwrap(),
            TaskState::Working,
            "id 8 was swept after its sweeper was dropped"
        );
        drop(dead);
    })
    .await
}
