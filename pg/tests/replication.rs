//! What a promotion could lose is never acknowledged. This binary's cluster
//! is made to name a synchronous standby that never connects, so every
//! commit waits for it, while a watcher cancels each such wait
//! (`pg_cancel_backend`): the server then warns that the commit is "already
//! committed locally, but might not have been replicated", and answers the
//! statement as if it had succeeded. A claim so answered is in doubt, never
//! granted; a finish is in doubt, never `Applied`, since the write that
//! would confirm it waits too. Once commits need no standby, the
//! confirmation goes through and the finish's commit is proved.

mod common;

use async_tasks_recorder_pg::{Bounds, Config, Finish, Outcome, Phase};
use common::{cluster, connect_to, recorder, settings, within};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Names a synchronous standby that never connects (or none), for every
/// session of the cluster.
async fn require_a_standby(admin: &tokio_postgres::Client, required: bool) {
    let set = if required {
        "ALTER SYSTEM SET synchronous_standby_names = 'never_connects'"
    } else {
        "ALTER SYSTEM RESET synchronous_standby_names"
    };
    admin.batch_execute(set).await.unwrap();
    admin
        .batch_execute("SELECT pg_reload_conf()")
        .await
        .unwrap();
    // The setting reaches every backend at its next command; wait for ours.
    let want = if required { "never_connects" } else { "" };
    within(10, "the reload", async {
        loop {
            let row = admin
                .query_one("SHOW synchronous_standby_names", &[])
                .await
                .unwrap();
            if row.get::<_, String>(0) == want {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

/// Cancels every wait for the synchronous standby until `stop`; how many.
async fn cancel_sync_waits(stop: CancellationToken) -> u64 {
    let client = connect_to(&cluster().config("postgres")).await;
    let mut cancelled = 0;
    while !stop.is_cancelled() {
        let rows = client
            .query(
                "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE wait_event = 'SyncRep'",
                &[],
            )
            .await
            .unwrap();
        cancelled += rows.len() as u64;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cancelled
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_whose_synchronous_wait_was_cancelled_is_never_acknowledged() {
    within(120, "cancelled synchronous waits", async {
        let config = Config {
            bounds: Bounds {
                statement: Some(Duration::from_secs(20)),
                ..Bounds::default()
            },
            ..settings(Duration::from_secs(60))
        };
        let recorder = recorder::<i64>("syncwait", config).await;
        let admin = connect_to(&cluster().config("postgres")).await;
        let attempt = recorder.claim(2).await.unwrap().unwrap();
        let lease = attempt.lease().clone();

        require_a_standby(&admin, true).await;
        let stop = CancellationToken::new();
        let canceller = tokio::spawn(cancel_sync_waits(stop.clone()));

        let claimed = recorder.claim(1).await;
        match claimed {
            Err(error) => assert!(error.is_in_doubt(), "id 1: the claim answered {error}"),
            Ok(answer) => panic!(
                "id 1: a claim whose synchronous wait was cancelled answered {:?}",
                answer.map(|a| a.lease().clone())
            ),
        }
        let finished = attempt.finish(Outcome::Ok).await;
        match finished {
            Err(error) => assert!(error.is_in_doubt(), "id 2: the finish answered {error}"),
            Ok(finish) => {
                panic!("id 2: a finish whose synchronous wait was cancelled answered {finish:?}")
            }
        }
        // The success is visible here, committed locally only.
        let stored = recorder.read(&2).await.unwrap();
        assert_eq!(
            (stored.phase, stored.success_fence),
            (Phase::Success, Some(lease.fence()))
        );

        stop.cancel();
        let cancelled = canceller.await.unwrap();
        assert!(cancelled >= 2, "only {cancelled} waits were cancelled");
        println!("{cancelled} synchronous waits cancelled");
        require_a_standby(&admin, false).await;
        // With no standby to wait for, the confirming write commits, and
        // the row's success is proved.
        assert_eq!(
            recorder.resolve_commit(&lease, Outcome::Ok).await.unwrap(),
            Finish::Applied,
            "id 2 once commits need no standby"
        );
    })
    .await
}
