//! A standby promoted after its primary crashed, on real servers: with
//! synchronous replication every acknowledged success survives and fences
//! go on rising; with asynchronous replication (the control) acknowledged
//! successes are lost and fences are drawn again. Both runs pause the
//! standby's WAL receiver (SIGSTOP) before the last payments and kill it
//! with the primary, so what an asynchronous promotion loses is certain,
//! not a race.

mod common;

use async_tasks_recorder_pg::cluster::{Cluster, Replication};
use async_tasks_recorder_pg::{Bounds, Config, Finish, PgRecorder, Phase};
use common::within;
use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

/// Sends `signal` to process `pid`.
fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success(), "kill -{signal} {pid}");
}

/// Pays `ids` (a launch whose task succeeds): the fence of every payment
/// answered `Applied`, and how many answered otherwise.
async fn pay(
    recorder: &PgRecorder<i64>,
    ids: std::ops::Range<i64>,
    paid: &mut BTreeMap<i64, u64>,
) -> usize {
    let mut unanswered = 0;
    for id in ids {
        let launched = recorder
            .launch_block(id, |lease| async move { Ok::<_, ()>(lease.fence()) })
            .await;
        match launched {
            Ok((Ok(fence), Ok(Finish::Applied))) => {
                paid.insert(id, fence);
            }
            _ => unanswered += 1,
        }
    }
    unanswered
}

/// What a promotion kept of the payments acknowledged before it: the ids
/// lost, and the fence the new primary grants next.
struct AfterPromotion {
    acknowledged: BTreeMap<i64, u64>,
    lost: Vec<i64>,
    next_fence: u64,
}

/// A primary and a standby with `replication`; 20 payments; the standby's
/// WAL receiver paused; `paused` more payments; the primary crashes; the
/// standby is promoted.
async fn promote_after_a_crash(replication: Replication, paused: i64) -> AfterPromotion {
    let primary = Cluster::start().unwrap_or_else(|e| panic!("{e}"));
    let standby = Cluster::standby_of(&primary, replication).unwrap_or_else(|e| panic!("{e}"));
    let settings = Config {
        lease: Duration::from_secs(5),
        pool_size: 2,
        bounds: Bounds {
            statement: Some(Duration::from_millis(800)),
            ..Bounds::default()
        },
        ..Config::default()
    };
    let config = Cluster::primary_config(&[&primary, &standby], "postgres");
    let recorder = PgRecorder::<i64>::new(config, "payments", settings).unwrap();
    recorder.install().await.unwrap();

    let mut acknowledged = BTreeMap::new();
    assert_eq!(pay(&recorder, 0..20, &mut acknowledged).await, 0);
    // Everything so far is on the standby (an asynchronous one may lag,
    // or have just connected): only what follows can be lost.
    standby
        .catch_up_with(&primary, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}"));
    let receiver = standby
        .wal_receiver_pid()
        .unwrap()
        .expect("the standby's WAL receiver runs");
    signal(receiver, "STOP");
    let unanswered = pay(&recorder, 20..20 + paused, &mut acknowledged).await;
    println!(
        "{replication:?}: {} acknowledged, {unanswered} not answered Applied",
        acknowledged.len()
    );
    primary.stop("immediate").unwrap();
    // Killed while stopped, the receiver never reads what the primary had
    // already written to its socket: the standby restarts from what it
    // has, and is promoted with that.
    signal(receiver, "KILL");
    standby.promote().unwrap_or_else(|e| panic!("{e}"));
    // The old primary comes back as the new standby, so that a
    // synchronous primary has a standby to wait for again.
    primary
        .follow(&standby, replication)
        .unwrap_or_else(|e| panic!("{e}"));

    // The same recorder follows the promotion: its pooled connections to
    // the dead primary are dropped, and new ones find the promoted node.
    let mut lost = Vec::new();
    for (&id, &fence) in &acknowledged {
        let stored = within(30, "a read after the promotion", recorder.read(&id))
            .await
            .unwrap();
        if stored.phase != Phase::Success || stored.success_fence != Some(fence) {
            lost.push(id);
        }
    }
    let next = within(30, "a claim after the promotion", recorder.claim(1_000))
        .await
        .unwrap()
        .unwrap();
    AfterPromotion {
        acknowledged,
        lost,
        next_fence: next.lease().fence(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_synchronous_promotion_keeps_every_acknowledged_success_and_fences_rise() {
    let after = within(
        120,
        "a synchronous failover",
        promote_after_a_crash(Replication::Synchronous, 4),
    )
    .await;
    assert_eq!(
        after.acknowledged.len(),
        20,
        "only the first 20 can be acknowledged"
    );
    println!(
        "synchronous: fence {} after {highest_shown}",
        after.next_fence,
        highest_shown = after.acknowledged.values().max().unwrap()
    );
    assert!(
        after.lost.is_empty(),
        "acknowledged successes lost: ids {:?}",
        after.lost
    );
    let highest = after.acknowledged.values().max().copied().unwrap_or(0);
    assert!(
        after.next_fence > highest,
        "fence {} granted after fence {highest} was acknowledged",
        after.next_fence
    );
}

/// The control: without synchronous replication the same run loses every
/// success acknowledged while the standby was paused, and draws their
/// fences again. If this stops failing, the synchronous run above proves
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_asynchronous_promotion_loses_acknowledged_successes_and_reissues_fences() {
    let after = within(
        120,
        "an asynchronous failover",
        // Forty: more than the 32 fences the sequence logs ahead, so the
        // promoted sequence resumes among the lost ones.
        promote_after_a_crash(Replication::Asynchronous, 40),
    )
    .await;
    assert_eq!(after.acknowledged.len(), 60);
    assert_eq!(
        after.lost,
        (20..60).collect::<Vec<_>>(),
        "the successes acknowledged while the standby was paused"
    );
    let lost_fences: Vec<u64> = after.lost.iter().map(|id| after.acknowledged[id]).collect();
    assert!(
        lost_fences.contains(&after.next_fence),
        "fence {} is not one of the lost fences {lost_fences:?}",
        after.next_fence
    );
    println!(
        "asynchronous: lost ids {:?}, fence {} drawn again",
        after.lost, after.next_fence
    );
}
