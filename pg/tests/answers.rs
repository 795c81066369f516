//! Every answer true: what a call answers is what the row proves, under
//! the half-failures a caller meets (a lease lost behind its back, a
//! revoke taken over, a caller that commits anyway).

mod common;

use async_tasks_recorder_pg::{Config, Finish, Outcome, PgRecorder, Statements, TaskState};
use common::proxy::Proxy;
use common::{RowLock, cluster, connect_to, recorder, settings, table, with_statements, within};
use std::time::Duration;

/// A `Stale` finish inside the caller's transaction leaves nothing to
/// commit: a caller who commits anyway commits none of the zombie's writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_finish_in_lets_no_write_of_its_transaction_commit() {
    within(60, "a stale finish_in", async {
        let lease = Duration::from_millis(200);
        let recorder = recorder::<i64>("stalein", settings(lease)).await;
        recorder.set_renewing(false);
        let zombie = recorder.claim(1).await.unwrap().unwrap();
        // The lease runs out and the id is expired: the holder is a zombie.
        tokio::time::sleep(lease * 2).await;
        assert!(!recorder.sweep(10).await.unwrap().is_empty());
        let ledger = table("ledger");
        let mut client = connect_to(&cluster().config("postgres")).await;
        client
            .batch_execute(&format!("CREATE TABLE {ledger} (id bigint NOT NULL)"))
            .await
            .unwrap();
        let tx = client.transaction().await.unwrap();
        tx.execute(&format!("INSERT INTO {ledger} VALUES (1)"), &[])
            .await
            .unwrap();
        assert_eq!(
            zombie.finish_in(&tx, Outcome::Ok).await.unwrap(),
            Finish::Stale
        );
        // The caller commits anyway.
        let _ = tx.commit().await;
        let rows = client
            .query_one(&format!("SELECT count(*) FROM {ledger}"), &[])
            .await
            .unwrap();
        let committed: i64 = rows.get(0);
        assert_eq!(
            committed, 0,
            "the zombie's write committed with its stale finish"
        );
    })
    .await
}

/// A's revoke lease lapsed, B took the revoke over and ended the epoch: A's
/// end never reached the row, and resolution must not read "the epoch moved
/// on" as A's own: two revokes of one epoch are never both `Applied`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoke_end_that_another_revoke_made_is_not_answered_applied() {
    within(60, "a revoke taken over", async {
        let lease = Duration::from_millis(200);
        let sql = Statements::new(&table("takeover"), "bigint");
        let a = with_statements::<i64>(sql.clone(), settings(lease)).await;
        let b = with_statements::<i64>(sql, settings(lease)).await;
        let won = a.claim(1).await.unwrap().unwrap();
        assert_eq!(won.finish(Outcome::Ok).await.unwrap(), Finish::Applied);
        a.set_renewing(false);
        let a_revoke = a.revoke_begin(1).await.unwrap().unwrap();
        tokio::time::sleep(lease * 2).await;
        let b_revoke = b
            .revoke_begin(1)
            .await
            .unwrap()
            .expect("A's revoke lease lapsed");
        assert!(b_revoke.lease().fence() > a_revoke.lease().fence());
        assert_eq!(b_revoke.finish(Outcome::Ok).await.unwrap(), Finish::Applied);
        // A's end was lost in transit; resolution reads the row.
        let resolved = a
            .resolve_finish(a_revoke.lease(), true, Outcome::Ok)
            .await
            .unwrap();
        assert_eq!(
            resolved,
            Some(Finish::Stale),
            "A's revoke end never applied"
        );
        assert_eq!(a_revoke.finish(Outcome::Ok).await.unwrap(), Finish::Stale);
    })
    .await
}

/// A renewal stuck behind another session's row lock never answers: the
/// lease must read lost once a lease period has passed since the claim
/// was sent, whatever the renewal is doing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_whose_renewal_hangs_behind_a_row_lock_reads_lost() {
    within(60, "a hanging renewal", async {
        let lease = Duration::from_millis(300);
        let name = table("stuck");
        let sql = Statements::new(&name, "bigint");
        let recorder = with_statements::<i64>(sql, settings(lease)).await;
        let sent = std::time::Instant::now();
        let attempt = recorder.claim(1).await.unwrap().unwrap();
        // Another session locks the row: every renewal waits behind it.
        let lock = RowLock::take(&name, 1).await;
        let lost = tokio::time::timeout(Duration::from_secs(5), attempt.lease().lost()).await;
        assert!(
            lost.is_ok(),
            "id 1: the lease still read live {:?} after its claim was sent",
            sent.elapsed()
        );
        assert!(attempt.lease().is_lost());
        lock.release().await;
        drop(attempt);
    })
    .await
}

/// A caller that gives up on its launch after the claim was sent (here it
/// waits behind another session's row lock) must not leave the id `Working`
/// for a whole lease: the claim that commits later settles `Failed`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_launch_dropped_while_its_claim_is_in_flight_leaves_no_working_id() {
    within(60, "a dropped launch", async {
        let name = table("dropped");
        let sql = Statements::new(&name, "bigint");
        // A lease far longer than the test: only a settled attempt frees the id.
        let recorder = with_statements::<i64>(sql, settings(Duration::from_secs(60))).await;
        let first = recorder.claim(1).await.unwrap().unwrap();
        assert_eq!(first.finish(Outcome::Err).await.unwrap(), Finish::Applied);
        let lock = RowLock::take(&name, 1).await;
        let launch = recorder.launch(1, |_| async { Ok::<(), ()>(()) });
        // The caller gives up while its claim waits behind the lock.
        assert!(
            tokio::time::timeout(Duration::from_millis(300), launch)
                .await
                .is_err()
        );
        lock.release().await;
        let mut state = recorder.query(&1).await.unwrap();
        for _ in 0..200 {
            if state != TaskState::Working {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
            state = recorder.query(&1).await.unwrap();
        }
        assert_eq!(
            state,
            TaskState::Failed,
            "id 1 stayed Working after its launch was dropped"
        );
        assert!(
            recorder.claim(1).await.unwrap().is_ok(),
            "id 1 is launchable again"
        );
    })
    .await
}

/// The connection breaks while the finish (of a revoke if `revoke`)
/// waits on a row lock, and the server goes on running it. The finish is
/// resent and queues behind it; the first send then applies, and the resend
/// matches nothing. Returns the answer, the attempt's fence and the row.
async fn finish_cut_in_flight(revoke: bool) -> (Finish, u64, async_tasks_recorder_pg::Stored) {
    let name = table("cutfinish");
    let proxy = Proxy::start(cluster());
    let settings = Config {
        pool_size: 2,
        ..settings(Duration::from_secs(60))
    };
    let sql = Statements::new(&name, "bigint");
    let recorder =
        PgRecorder::<i64>::with_statements(proxy.config(cluster()), sql, settings).unwrap();
    recorder.install().await.unwrap();
    let attempt = if revoke {
        let (_, paid) = recorder
            .launch_block(1, |_| async { Ok::<(), ()>(()) })
            .await
            .unwrap();
        assert_eq!(paid.unwrap(), Finish::Applied);
        recorder.revoke_begin(1).await.unwrap().unwrap()
    } else {
        recorder.claim(1).await.unwrap().unwrap()
    };
    let fence = attempt.lease().fence();
    let lock = RowLock::take(&name, 1).await;
    let finishing = tokio::spawn(attempt.finish(Outcome::Ok));
    let watcher = connect_to(&cluster().config("postgres")).await;
    let waiting_finishes = || async {
        let row = watcher
            .query_one(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE wait_event_type = 'Lock' AND query LIKE 'UPDATE%'",
                &[],
            )
            .await
            .unwrap();
        row.get::<_, i64>(0)
    };
    while waiting_finishes().await < 1 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The network cut: the client sees its connection close, the server
    // keeps the first send waiting on the lock.
    proxy.cut();
    while waiting_finishes().await < 2 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Both sends wait; the first one takes the lock first and applies.
    lock.release().await;
    let finish = finishing.await.unwrap().unwrap();
    (finish, fence, recorder.read(&1).await.unwrap())
}

/// A finish cut in flight that applied: the answer must be what the row
/// proves, `Applied`, never `Stale`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finish_cut_in_flight_that_applied_is_answered_applied() {
    let (finish, fence, stored) =
        within(60, "a finish cut in flight", finish_cut_in_flight(false)).await;
    assert_eq!(stored.success_fence, Some(fence), "the first send applied");
    assert_eq!(
        finish,
        Finish::Applied,
        "id 1: an applied finish answered {finish:?}"
    );
}

/// The same for a revoke end: the row, `NotFound` in the next epoch with
/// this revoke's fence, proves it applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoke_end_cut_in_flight_that_applied_is_answered_applied() {
    let (finish, fence, stored) =
        within(60, "a revoke end cut in flight", finish_cut_in_flight(true)).await;
    assert_eq!(
        (stored.phase, stored.epoch, stored.fence),
        (async_tasks_recorder_pg::Phase::NotFound, 1, fence),
        "the first send applied"
    );
    assert_eq!(
        finish,
        Finish::Applied,
        "id 1: an applied revoke end answered {finish:?}"
    );
}

/// A `finish_in` that applied, then its transaction rolled back: the
/// attempt is settled `Failed` once the transaction has ended, so the id
/// can be launched again at once rather than after its 30 s lease. (Before,
/// the attempt was consumed and the id read `Working` for the whole lease.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finish_in_whose_transaction_rolls_back_settles_the_attempt() {
    within(60, "a rolled-back finish_in", async {
        let recorder = recorder::<i64>("rollback", settings(Duration::from_secs(30))).await;
        let attempt = recorder.claim(1).await.unwrap().unwrap();
        let fence = attempt.lease().fence();
        let mut client = connect_to(&cluster().config("postgres")).await;
        let tx = client.transaction().await.unwrap();
        assert_eq!(
            attempt.finish_in(&tx, Outcome::Ok).await.unwrap(),
            Finish::Applied
        );
        // The transaction stays open a while: the attempt is not settled
        // under it.
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(recorder.query(&1).await.unwrap(), TaskState::Working);
        tx.rollback().await.unwrap();
        let settled = within(10, "id 1 settled after the rollback", async {
            loop {
                let state = recorder.query(&1).await.unwrap();
                if state != TaskState::Working {
                    return state;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert_eq!(
            settled,
            TaskState::Failed,
            "id 1 after its finish rolled back"
        );
        let again = recorder.claim(1).await.unwrap().unwrap();
        assert!(again.lease().fence() > fence);
    })
    .await
}

/// A `finish_in` that applied and committed is never settled again: the
/// success stands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_committed_finish_in_stays_success() {
    within(60, "a committed finish_in", async {
        let recorder = recorder::<i64>("committed", settings(Duration::from_secs(30))).await;
        let attempt = recorder.claim(1).await.unwrap().unwrap();
        let mut client = connect_to(&cluster().config("postgres")).await;
        let tx = client.transaction().await.unwrap();
        assert_eq!(
            attempt.finish_in(&tx, Outcome::Ok).await.unwrap(),
            Finish::Applied
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        tx.commit().await.unwrap();
        // Past several of the settler's pauses (a tenth of the lease, at
        // most 1 s).
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(recorder.query(&1).await.unwrap(), TaskState::Success);
    })
    .await
}
