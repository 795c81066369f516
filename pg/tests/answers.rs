//! Every answer true: what a call answers is what the row proves, under
//! the half-failures a caller meets (a lease lost behind its back, a
//! revoke taken over, a caller that commits anyway).

mod common;

use async_tasks_recorder_pg::{Finish, Outcome};
use common::{cluster, connect_to, recorder, settings, table, within};
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
