//! Leases and fences on a real cluster: zombies are `Stale`, a fenced
//! ledger gets one row per epoch, nothing stays `Working` past the sweep,
//! and the known-bad statements (an unfenced finish, a claim that trusts a
//! replica's clock, expiry computed in a read) are each caught, for the
//! reason they are wrong.

mod common;

use async_tasks_recorder::spec::Phase;
use async_tasks_recorder_pg::{
    Finish, KnownBad, LaunchRefusal, Outcome, PgRecorder, Statements, TaskState,
    end_idle_transactions,
};
use common::{cluster, connect_to, settings, table, with_statements, within};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const LONG: Duration = Duration::from_secs(30);

fn good(prefix: &str) -> Statements {
    Statements::new(&table(prefix), "text")
}

/// A replica that sees the database clock `by` later: to it, the other
/// replica's lease has run out.
async fn later_replica(sql: &Statements, by: Duration) -> PgRecorder<String> {
    let r = with_statements::<String>(sql.clone(), settings(LONG)).await;
    r.shift_clock(by);
    r
}

/// A holds `id`; time passes past its lease; B takes the id over; A,
/// unaware, finishes. A's finish must be `Stale` and B's `Applied`.
async fn zombie_finish_is_stale(sql: Statements) -> Result<(), String> {
    let a = with_statements::<String>(sql.clone(), settings(LONG)).await;
    let b = later_replica(&sql, Duration::from_secs(120)).await;
    let zombie = a.claim("z".into()).await.unwrap().unwrap();
    let holder = b
        .claim("z".into())
        .await
        .unwrap()
        .map_err(|state| format!("takeover of a lapsed lease refused: {state:?}"))?;
    let (old, new) = (zombie.lease().fence(), holder.lease().fence());
    if new <= old {
        return Err(format!("fence did not increase: {old} then {new}"));
    }
    let late = zombie.finish(Outcome::Ok).await.unwrap();
    if late != Finish::Stale {
        return Err(format!(
            "zombie finish applied: fence {old} finished after fence {new} was granted"
        ));
    }
    let current = holder.finish(Outcome::Ok).await.unwrap();
    if current != Finish::Applied {
        return Err(format!("the current holder's finish was {current:?}"));
    }
    Ok(())
}

/// A holds `id` with a live lease; B, whose own clock runs an hour fast,
/// launches it. B must be refused.
async fn live_claim_is_not_stolen(sql: Statements) -> Result<(), String> {
    let a = with_statements::<String>(sql.clone(), settings(LONG)).await;
    let b = with_statements::<String>(sql, settings(LONG)).await;
    b.skew_client_clock(Duration::from_secs(3600));
    let holder = a.claim("live".into()).await.unwrap().unwrap();
    let result = match b.claim("live".into()).await.unwrap() {
        Err(LaunchRefusal::Working) => Ok(()),
        Err(refused) => Err(format!("refused with {refused:?}, not Working")),
        Ok(thief) => Err(format!(
            "live claim stolen: fence {} granted while fence {} held a live lease",
            thief.lease().fence(),
            holder.lease().fence()
        )),
    };
    holder.finish(Outcome::Err).await.unwrap();
    result
}

/// Checks one reader's observations of one id, with the launches granted
/// meanwhile: `Failed` then `Success` with no launch in between is a read
/// of an expiry that never happened.
fn check_reads(observed: &[(TaskState, usize)]) -> Result<(), String> {
    for pair in observed.windows(2) {
        let ((before, grants_before), (after, grants_after)) = (pair[0], pair[1]);
        if before == TaskState::Failed
            && after == TaskState::Success
            && grants_before == grants_after
        {
            return Err("read Failed, then Success with no launch between".into());
        }
    }
    Ok(())
}

/// A's task outlives its lease while nobody sweeps; a reader later in time
/// reads, then A finishes, then the reader reads again.
async fn reads_show_only_written_states(sql: Statements) -> Result<(), String> {
    let a = with_statements::<String>(sql.clone(), settings(LONG)).await;
    let reader = later_replica(&sql, Duration::from_secs(120)).await;
    let holder = a.claim("r".into()).await.unwrap().unwrap();
    let mut observed = vec![(reader.query(&"r".into()).await.unwrap(), 1)];
    let finish = holder.finish(Outcome::Ok).await.unwrap();
    observed.push((reader.query(&"r".into()).await.unwrap(), 1));
    check_reads(&observed)?;
    if finish != Finish::Applied {
        return Err(format!("an unchallenged late finish was {finish:?}"));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zombie_finish_is_stale() {
    within(60, "zombie", zombie_finish_is_stale(good("zombie")))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bite_a_finish_without_the_fence_check_is_caught() {
    // Matches any working attempt: the fence parameter is ignored.
    let sql = good("bite_fence").known_bad(KnownBad::FinishWithoutFence);
    let error = within(60, "unfenced finish", zombie_finish_is_stale(sql))
        .await
        .unwrap_err();
    assert!(error.starts_with("zombie finish applied"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fast_replica_clock_does_not_steal_a_live_claim() {
    within(60, "live claim", live_claim_is_not_stolen(good("clock")))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bite_a_claim_trusting_the_client_clock_is_caught() {
    // The lease is compared with the replica's clock ($4), not the database's.
    let sql = good("bite_clock").known_bad(KnownBad::ClaimByClientClock);
    let error = within(60, "client clock", live_claim_is_not_stolen(sql))
        .await
        .unwrap_err();
    assert!(error.starts_with("live claim stolen"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_report_the_stored_state() {
    within(60, "reads", reads_show_only_written_states(good("reads")))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bite_expiry_computed_in_the_read_is_caught() {
    let sql = good("bite_read").known_bad(KnownBad::ReadComputesExpiry);
    let error = within(60, "read-path expiry", reads_show_only_written_states(sql))
        .await
        .unwrap_err();
    assert_eq!(error, "read Failed, then Success with no launch between");
}

#[test]
fn the_read_check_accepts_a_relaunch_between() {
    let relaunched = [(TaskState::Failed, 1), (TaskState::Success, 2)];
    assert!(check_reads(&relaunched).is_ok());
}

/// One finish attempt, for the fencing check.
#[derive(Clone, Debug)]
struct FinishRecord {
    id: String,
    fence: u64,
    started: Instant,
    result: Finish,
}

/// Short leases, tasks that stall past them with renewal off (a paused
/// process), replicas taking over, a sweeper and a revoker; every success
/// writes a ledger row `(id, epoch)` in the same transaction as its fenced
/// finish.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fenced_ledger_gets_one_row_per_epoch_under_stalls() {
    within(120, "ledger run", async {
        let lease = Duration::from_millis(150);
        let sql = good("ledger");
        let ledger = format!("{}_ledger", table("ledger"));
        let admin = connect().await;
        admin
            .batch_execute(&format!(
                "CREATE TABLE {ledger} (id text, epoch bigint, fence bigint, PRIMARY KEY (id, epoch))"
            ))
            .await
            .unwrap();
        let grants: Arc<Mutex<Vec<(String, u64, Instant)>>> = Arc::default();
        let finishes: Arc<Mutex<Vec<FinishRecord>>> = Arc::default();
        let ledger_errors: Arc<Mutex<Vec<String>>> = Arc::default();
        let deadline = Instant::now() + Duration::from_secs(8);
        let mut workers = Vec::new();
        for worker in 0..4u64 {
            let r = with_statements::<String>(sql.clone(), settings(lease)).await;
            r.set_renewing(false);
            let (grants, finishes, errors, ledger) =
                (grants.clone(), finishes.clone(), ledger_errors.clone(), ledger.clone());
            workers.push(tokio::spawn(async move {
                let mut client = connect().await;
                let mut rng = fastrand_seed(worker);
                for round in 0..60u64 {
                    if Instant::now() > deadline {
                        break;
                    }
                    let id = format!("k{}", (round * 7 + worker) % 6);
                    let Ok(attempt) = r.claim(id.clone()).await.unwrap() else {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        continue;
                    };
                    let (fence, epoch) = (attempt.lease().fence(), attempt.lease().epoch());
                    grants.lock().unwrap().push((id.clone(), fence, Instant::now()));
                    // Stall: sometimes well past the lease.
                    tokio::time::sleep(Duration::from_millis(rng() % 300)).await;
                    let started = Instant::now();
                    let tx = client.transaction().await.unwrap();
                    let result = attempt.finish_in(&tx, Outcome::Ok).await.unwrap();
                    if result == Finish::Applied {
                        let insert = tx
                            .execute(
                                &format!("INSERT INTO {ledger} VALUES ($1, $2, $3)"),
                                &[&id, &(epoch as i64), &(fence as i64)],
                            )
                            .await;
                        match insert {
                            Ok(_) => tx.commit().await.unwrap(),
                            Err(e) => errors.lock().unwrap().push(format!("{id}/{epoch}: {e}")),
                        }
                    } else {
                        tx.rollback().await.unwrap();
                    }
                    finishes.lock().unwrap().push(FinishRecord {
                        id,
                        fence,
                        started,
                        result,
                    });
                }
            }));
        }
        let sweeper = {
            let r = with_statements::<String>(sql.clone(), settings(lease)).await;
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    r.sweep(100).await.unwrap();
                    tokio::time::sleep(Duration::from_millis(40)).await;
                }
            })
        };
        let revoker = {
            let r = with_statements::<String>(sql.clone(), settings(LONG)).await;
            tokio::spawn(async move {
                let mut revoked = 0;
                while Instant::now() < deadline {
                    for id in r.list(TaskState::Success).await.unwrap() {
                        if r.revoke(id, |_| async { Ok::<_, ()>(()) }).await.is_ok() {
                            revoked += 1;
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(150)).await;
                }
                revoked
            })
        };
        for worker in workers {
            worker.await.unwrap();
        }
        sweeper.await.unwrap();
        let revoked = revoker.await.unwrap();

        let errors = ledger_errors.lock().unwrap().clone();
        assert!(errors.is_empty(), "second ledger row for an epoch: {errors:?}");
        // Every finish that began after a greater fence of its id was
        // granted is Stale.
        let grants = grants.lock().unwrap().clone();
        let finishes = finishes.lock().unwrap().clone();
        let mut stale = 0;
        for f in &finishes {
            let superseded = grants
                .iter()
                .any(|(id, fence, at)| *id == f.id && *fence > f.fence && *at < f.started);
            if superseded {
                assert_eq!(f.result, Finish::Stale, "zombie finish applied: {f:?}");
            }
            stale += usize::from(f.result == Finish::Stale);
        }
        // The run did produce zombies, successes and new epochs.
        let applied = finishes.len() - stale;
        eprintln!(
            "ledger run: {} grants, {} finishes, {stale} stale, {applied} applied, {revoked} revokes",
            grants.len(),
            finishes.len()
        );
        assert!(stale > 0 && applied > 0 && revoked > 0, "stale {stale}, applied {applied}, revoked {revoked}");
        // Ledger rows are exactly the applied successes, one per (id, epoch).
        let rows = admin
            .query(&format!("SELECT count(*) FROM {ledger}"), &[])
            .await
            .unwrap();
        let rows: i64 = rows[0].get(0);
        assert_eq!(rows as usize, applied);
        // The sweep, run past every lease, leaves no row Working.
        let sweeper = with_statements::<String>(sql.clone(), settings(lease)).await;
        sweeper.shift_clock(Duration::from_secs(1));
        sweeper.sweep(10_000).await.unwrap();
        assert_eq!(sweeper.count(TaskState::Working).await.unwrap(), 0);
        for (id, _, _) in &grants {
            let phase = sweeper.read(id).await.unwrap().phase;
            assert_ne!(phase, Phase::Working, "{id} still Working after the sweep");
        }
    })
    .await
}

/// A holder that freezes between its fenced finish and its commit keeps the
/// id's row locked by its transaction. Returns the holder's connection, its
/// transaction left open, and what a rival's claim of the id did within
/// `wait`: `None` if it was still waiting, or the fences granted (holder,
/// rival).
async fn rival_claim_while_finish_in_is_open(
    prefix: &str,
    idle_timeout: Option<Duration>,
    wait: Duration,
) -> (tokio_postgres::Client, Option<(u64, u64)>) {
    let lease = Duration::from_millis(150);
    let sql = good(prefix);
    let holder = with_statements::<String>(sql.clone(), settings(lease)).await;
    let rival = with_statements::<String>(sql, settings(lease)).await;
    let mut config = cluster().config("postgres");
    if let Some(idle) = idle_timeout {
        end_idle_transactions(&mut config, idle);
    }
    let mut client = connect_to(&config).await;
    let attempt = holder.claim("frozen".into()).await.unwrap().unwrap();
    let held = attempt.lease().fence();
    let tx = client.transaction().await.unwrap();
    assert_eq!(
        attempt.finish_in(&tx, Outcome::Ok).await.unwrap(),
        Finish::Applied
    );
    // The holder is frozen here: no statement, no commit. The rival claims
    // until granted (the first tries may find the lease still live, and
    // later ones wait on the frozen lock until the lock bound).
    let granted = tokio::time::timeout(wait, async {
        loop {
            if let Ok(Ok(attempt)) = rival.claim("frozen".into()).await {
                return attempt.lease().fence();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .ok();
    // Keep the transaction's end to the caller: forget it without a rollback.
    std::mem::forget(tx);
    (client, granted.map(|rival| (held, rival)))
}

/// With `idle_in_transaction_session_timeout` on the connection of the
/// finish's transaction, the server ends the frozen holder's session: its
/// finish and writes roll back together, and the id is taken over with a
/// greater fence once the lease has run out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_idle_timeout_frees_an_id_whose_holder_froze_in_finish_in() {
    within(30, "takeover after the idle timeout", async {
        let idle = Some(Duration::from_millis(400));
        let (client, granted) =
            rival_claim_while_finish_in_is_open("idle", idle, Duration::from_secs(10)).await;
        let (held, rival) = granted.expect("id 'frozen' never taken over after the idle timeout");
        assert!(rival > held, "fence {rival} granted after {held}");
        let commit = client.batch_execute("COMMIT").await;
        assert!(
            commit.is_err(),
            "the frozen holder's session outlived the idle timeout"
        );
    })
    .await
}

#[test]
fn end_idle_transactions_keeps_other_options_and_never_turns_the_timeout_off() {
    let mut config = tokio_postgres::Config::new();
    config.options("-c statement_timeout=5000");
    end_idle_transactions(&mut config, Duration::from_millis(1500));
    assert_eq!(
        config.get_options(),
        Some("-c statement_timeout=5000 -c idle_in_transaction_session_timeout=1500")
    );
    // 0 would turn the timeout off; a sub-millisecond wish is 1 ms.
    let mut config = tokio_postgres::Config::new();
    end_idle_transactions(&mut config, Duration::from_micros(10));
    assert_eq!(
        config.get_options(),
        Some("-c idle_in_transaction_session_timeout=1")
    );
    // The setting's largest value, not a number the server refuses.
    end_idle_transactions(&mut config, Duration::from_secs(u64::MAX));
    assert!(config.get_options().unwrap().ends_with("=2147483647"));
}

/// Without the timeout, the rival waits for as long as the holder stays
/// frozen: the reason the README asks for the setting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_idle_timeout_a_holder_frozen_in_finish_in_blocks_its_id() {
    within(30, "blocked claim", async {
        let (client, granted) =
            rival_claim_while_finish_in_is_open("noidle", None, Duration::from_secs(2)).await;
        assert_eq!(granted, None, "id 'frozen' taken over under an open finish");
        // The holder wakes and commits: its success stands.
        client.batch_execute("COMMIT").await.unwrap();
    })
    .await
}

async fn connect() -> tokio_postgres::Client {
    connect_to(&cluster().config("postgres")).await
}

/// A tiny deterministic generator per worker (xorshift).
fn fastrand_seed(seed: u64) -> impl FnMut() -> u64 {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}
