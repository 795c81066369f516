//! A refusal is a read: a refused claim or revoke locks no row, writes
//! nothing and waits for no writer of the row; and a read made stale by a
//! write that commits after it never grants, since the guarded write
//! decides on the row as it then is (proofs/P10-pg-linearizable.md,
//! "Refusals").

mod common;

use async_tasks_recorder_pg::Phase;
use async_tasks_recorder_pg::{
    Bounds, Config, KnownBad, LaunchRefusal, Outcome, PgRecorder, RevokeRefusal, Statements,
    state_code,
};
use common::{RowLock, cluster, connect_to, settings, table, with_statements, within};
use std::time::Duration;

/// The row's system columns and fence: a refusal that locked the row
/// (`SELECT … FOR UPDATE`, or `ON CONFLICT DO UPDATE` whose `WHERE` is
/// false) would have set `xmax` to its own transaction.
async fn versions(table: &str, id: i64) -> (String, String, i64) {
    let client = connect_to(&cluster().config("postgres")).await;
    let row = client
        .query_one(
            &format!("SELECT xmin::text, xmax::text, fence FROM {table} WHERE id = $1"),
            &[&id],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1), row.get(2))
}

/// A recorder on table `name` with `sql`'s statements made for it.
async fn on(name: &str, defect: Option<KnownBad>, settings: Config) -> PgRecorder<i64> {
    let mut sql = Statements::new(name, "bigint");
    if let Some(defect) = defect {
        sql = sql.known_bad(defect);
    }
    with_statements(sql, settings).await
}

/// Refused claims of a `Working` and a `Success` id, and refused revokes of
/// a `Working` and a `Revoking` one, leave each row's version and lock as
/// they were. (It failed before: each refused claim's `ON CONFLICT DO
/// UPDATE` locked the row, setting its `xmax`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_lock_no_row_and_write_no_version() {
    within(60, "refusals of held ids", async {
        let name = table("refused");
        let recorder = on(&name, None, settings(Duration::from_secs(60))).await;
        let working = recorder.claim(1).await.unwrap().unwrap();
        let done = recorder.claim(2).await.unwrap().unwrap();
        assert_eq!(
            done.finish(Outcome::Ok).await.unwrap(),
            async_tasks_recorder_pg::Finish::Applied
        );
        let revoking = recorder.revoke_begin(2).await.unwrap().unwrap();
        let before = [versions(&name, 1).await, versions(&name, 2).await];
        for _ in 0..3 {
            assert_eq!(
                recorder.claim(1).await.unwrap().err(),
                Some(LaunchRefusal::Working)
            );
            assert_eq!(
                recorder.claim(2).await.unwrap().err(),
                Some(LaunchRefusal::Success)
            );
            assert_eq!(
                recorder.revoke_begin(1).await.unwrap().err(),
                Some(RevokeRefusal::NotSuccess)
            );
            assert_eq!(
                recorder.revoke_begin(2).await.unwrap().err(),
                Some(RevokeRefusal::Revoking)
            );
        }
        let after = [versions(&name, 1).await, versions(&name, 2).await];
        assert_eq!(
            after, before,
            "refusals changed a row's (xmin, xmax, fence): a refusal locked or wrote it"
        );
        drop((working, revoking));
    })
    .await
}

/// While another session holds the row's lock (a finish inside its
/// transaction, say), a claim of the `Working` id is refused at once from
/// its read, with the lock bound an hour: nothing waits behind the writer.
/// (It failed before: the claim's write queued on the lock, and the test
/// timed out.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_does_not_wait_behind_a_writer_of_the_row() {
    let name = table("unwaited");
    let hour = Some(Duration::from_secs(3600));
    let unbounded = Config {
        bounds: Bounds {
            statement: hour,
            lock: hour,
            connection: None,
        },
        ..settings(Duration::from_secs(60))
    };
    let recorder = on(&name, None, unbounded).await;
    let held = recorder.claim(1).await.unwrap().unwrap();
    let lock = RowLock::take(&name, 1).await;
    let refused = within(20, "a claim behind another session's row lock", async {
        recorder.claim(1).await.unwrap().err()
    })
    .await;
    assert_eq!(refused, Some(LaunchRefusal::Working));
    lock.release().await;
    drop(held);
}

/// Another session's write of id 1 of a table to a leased phase under a new
/// fence, held uncommitted, as a claim or revoke of another replica in
/// flight.
struct Uncommitted {
    client: tokio_postgres::Client,
    fence: i64,
}

impl Uncommitted {
    async fn begin(name: &str, to: Phase) -> Uncommitted {
        let client = connect_to(&cluster().config("postgres")).await;
        client.batch_execute("BEGIN").await.unwrap();
        let row = client
            .query_one(
                &format!(
                    "UPDATE {name} SET state = $1, fence = nextval('\"{name}$fence\"'),
                       lease_until = clock_timestamp() + interval '1 hour'
                     WHERE id = 1 RETURNING fence"
                ),
                &[&state_code(to)],
            )
            .await
            .unwrap();
        Uncommitted {
            fence: row.get(0),
            client,
        }
    }

    /// Commits once a write of `name` waits on the row lock: that write's
    /// read came before this commit.
    async fn commit_once_a_write_waits(self, name: &str) -> i64 {
        within(20, "a write waiting on the row lock", async {
            loop {
                let waiting: i64 = self
                    .client
                    .query_one(
                        "SELECT count(*) FROM pg_stat_activity
                         WHERE wait_event_type = 'Lock' AND query LIKE $1",
                        &[&format!("UPDATE \"{name}\" %")],
                    )
                    .await
                    .unwrap()
                    .get(0);
                if waiting > 0 {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
        self.client.batch_execute("COMMIT").await.unwrap();
        self.fence
    }
}

/// Settings for a write that waits on another session's row lock until the
/// test commits it: lock and statement bounds of a minute, so that a loaded
/// machine's slow commit cannot turn the wait into a lock timeout (the
/// waits themselves are bounded by `within`).
fn behind_a_writer() -> Config {
    let minute = Duration::from_secs(60);
    Config {
        bounds: Bounds {
            statement: Some(minute),
            lock: Some(minute),
            connection: None,
        },
        ..settings(minute)
    }
}

/// A claim of `Failed` id 1 whose read comes while another claim of it is
/// in flight, and whose write waits until that claim commits: its answer
/// (the fence it was granted), and the other claim's fence.
async fn claim_behind_a_committing_claim(
    recorder: &PgRecorder<i64>,
    name: &str,
) -> (Result<u64, LaunchRefusal>, u64) {
    let first = recorder.claim(1).await.unwrap().unwrap();
    first.finish(Outcome::Err).await.unwrap();
    let other = Uncommitted::begin(name, Phase::Working).await;
    let claimer = recorder.clone();
    let answer = tokio::spawn(async move {
        let claimed = claimer.claim(1).await.unwrap();
        claimed.map(|attempt| attempt.lease().fence())
    });
    let fence = other.commit_once_a_write_waits(name).await;
    let answer = within(20, "the claim behind the committed claim", answer).await;
    (answer.unwrap(), fence as u64)
}

/// A claim whose read saw `Failed` while another claim was committing is
/// refused with `Working`: its write's guard saw the committed claim, and
/// the row keeps the other claim's fence. (The bite below shows the test
/// fails when the write's guard is gone.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_read_never_grants_a_claim() {
    let name = table("stale");
    let recorder = on(&name, None, behind_a_writer()).await;
    let (answer, fence) = claim_behind_a_committing_claim(&recorder, &name).await;
    assert_eq!(answer, Err(LaunchRefusal::Working));
    assert_eq!(recorder.read(&1).await.unwrap().fence, fence);
}

/// A revoke begin whose read saw `Success` while another revoke was
/// committing is refused with `Revoking`, and the row keeps the other
/// revoke's fence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_read_never_grants_a_revoke() {
    let name = table("stalerevoke");
    let recorder = on(&name, None, behind_a_writer()).await;
    let done = recorder.claim(1).await.unwrap().unwrap();
    done.finish(Outcome::Ok).await.unwrap();
    let other = Uncommitted::begin(&name, Phase::Revoking).await;
    let revoker = recorder.clone();
    let answer = tokio::spawn(async move {
        let begun = revoker.revoke_begin(1).await.unwrap();
        begun.map(|attempt| attempt.lease().fence())
    });
    let fence = other.commit_once_a_write_waits(&name).await;
    let answer = within(20, "the revoke behind the committed revoke", answer).await;
    assert_eq!(answer.unwrap(), Err(RevokeRefusal::Revoking));
    assert_eq!(recorder.read(&1).await.unwrap().fence, fence as u64);
}

/// The bite: a claim whose write trusts its read grants the id the
/// committing claim holds, so the claim test above can fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bite_a_claim_that_trusts_its_stale_read_grants_a_held_id() {
    let name = table("trusting");
    let defect = Some(KnownBad::ClaimTrustsItsRead);
    let recorder = on(&name, defect, behind_a_writer()).await;
    let (answer, fence) = claim_behind_a_committing_claim(&recorder, &name).await;
    let granted = answer.expect("the trusting claim was refused: the bite cannot bite");
    assert!(
        granted > fence,
        "a second holder of id 1: fence {granted} over the live {fence}"
    );
}
