//! Two replicas share one database. Replica A takes the payment of
//! invoice 42 and then stalls past its lease (a long GC pause: it stops
//! renewing). Replica B finds the id lapsed, takes it over, and pays. A
//! wakes up and tries to pay too: its fenced finish is `Stale`, so its
//! payment row is rolled back. The ledger holds one payment.
//!
//! Run: `cargo run -p async_tasks_recorder_pg --example two_replicas`
//! (needs the PostgreSQL server binaries; it starts a throwaway cluster).

use async_tasks_recorder_pg::cluster::Cluster;
use async_tasks_recorder_pg::{Attempt, Config, Finish, Outcome, PgRecorder, TaskState};
use std::time::Duration;

/// Pays in the same transaction as the fenced finish: exactly once per epoch.
async fn pay(
    db: &mut tokio_postgres::Client,
    attempt: Attempt<String>,
    who: &str,
) -> Result<Finish, Box<dyn std::error::Error>> {
    let lease = attempt.lease().clone();
    let tx = db.transaction().await?;
    let finish = attempt.finish_in(&tx, Outcome::Ok).await?;
    if finish == Finish::Applied {
        tx.execute(
            "INSERT INTO payments (invoice, epoch, paid_by) VALUES ($1, $2, $3)",
            &[lease.id(), &(lease.epoch() as i64), &who],
        )
        .await?;
        tx.commit().await?;
    } else {
        tx.rollback().await?;
    }
    println!("{who}: fence {} finished: {finish:?}", lease.fence());
    Ok(finish)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cluster = Cluster::start()?;
    let config = Config {
        lease: Duration::from_millis(300),
        ..Config::default()
    };
    let a = PgRecorder::<String>::new(cluster.config("postgres"), "invoices", config.clone())?;
    let b = PgRecorder::<String>::new(cluster.config("postgres"), "invoices", config)?;
    a.install().await?;
    let (mut db, connection) = cluster
        .config("postgres")
        .connect(tokio_postgres::NoTls)
        .await?;
    tokio::spawn(connection);
    db.batch_execute(
        "CREATE TABLE payments (invoice text, epoch bigint, paid_by text, PRIMARY KEY (invoice, epoch))",
    )
    .await?;

    let id = "invoice-42".to_string();
    a.set_renewing(false); // A's process is about to stall.
    let Ok(stalled) = a.claim(id.clone()).await? else {
        return Err("A's claim was refused".into());
    };
    println!("A: claimed with fence {}", stalled.lease().fence());
    println!(
        "B: launch while A's lease is live: {:?}",
        b.claim(id.clone()).await?.err()
    );

    tokio::time::sleep(Duration::from_millis(500)).await; // A stalls past its lease.
    let Ok(takeover) = b.claim(id.clone()).await? else {
        return Err("B could not take over the lapsed lease".into());
    };
    println!("B: took over with fence {}", takeover.lease().fence());
    assert_eq!(pay(&mut db, takeover, "B").await?, Finish::Applied);
    assert_eq!(pay(&mut db, stalled, "A").await?, Finish::Stale);

    let paid: i64 = db
        .query_one("SELECT count(*) FROM payments", &[])
        .await?
        .get(0);
    println!("payments: {paid}; state: {:?}", a.query(&id).await?);
    assert_eq!((paid, a.query(&id).await?), (1, TaskState::Success));
    Ok(())
}
