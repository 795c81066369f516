//! The PostgreSQL backend against the spec's fenced transition function:
//! random sequences compared step by step with `spec::fenced_step`, and
//! concurrent histories checked for linearizability against it.
//!
//! Leases run out in these tests by moving one replica's view of the
//! database clock forward (`shift_clock`): to that replica every lease has
//! lapsed, to the others none has. The model applies `Lapse` to the record
//! as that replica sees it.
//!
//! Case counts: `ATR_PG_SEQUENCES` (default 40) and `ATR_PG_HISTORIES`
//! (default 25); `.ci/pg-deep.sh` runs 2,000 and 300.
//!
//! Why not the workspace harness's model test and schedules (`harness/`):
//! they check against `spec::step` (no fences, no lapse), the harness's
//! `Protocol::query` and `list` are synchronous, and its runs decide
//! quiescence by counting live runtime tasks and yielding, which a pooled
//! database client (its connection tasks, the lease renewals) never
//! reaches. This file runs the same two kinds of check, sequential
//! comparison and linearizability, against `spec::fenced_step`; the second
//! with the harness's checker, given `spec::fenced_step` as its model
//! ([`FencedSpec`]).

mod common;

use async_tasks_recorder::spec::{Outcome, Record, TaskState};
use async_tasks_recorder_harness::support::{Xorshift, env_or};
use async_tasks_recorder_pg::{Attempt, Finish, KnownBad, PgRecorder, Statements};
use common::fenced::{Event, FencedSpec, Seen, Timed, apply, linearizable};
use common::{settings, table, with_statements, within};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Two replicas on one table: `plain` and `later`, whose clock is shifted
/// past every lease.
struct Replicas {
    plain: PgRecorder<i64>,
    later: PgRecorder<i64>,
}

async fn replicas(sql: Statements) -> Replicas {
    let plain = with_statements::<i64>(sql.clone(), settings(Duration::from_secs(60))).await;
    let later = with_statements::<i64>(sql, settings(Duration::from_secs(60))).await;
    later.shift_clock(Duration::from_secs(3600));
    Replicas { plain, later }
}

/// Held attempts of one client: (id, holding a revoke, attempt).
type Held = Vec<(i64, bool, Attempt<i64>)>;

/// One random operation on `ids` by a client of `replicas`: the id, whether
/// the shifted replica ran it, the event. `None` for a sweep (it touches
/// every id; its events are returned through `sweeps`).
async fn random_op(
    replicas: &Replicas,
    rng: &mut Xorshift,
    ids: &[i64],
    held: &mut Held,
) -> Vec<(i64, bool, Event)> {
    let shifted = rng.below(4) == 0;
    let r = if shifted {
        &replicas.later
    } else {
        &replicas.plain
    };
    let id = ids[rng.below(ids.len() as u64) as usize];
    let outcome = if rng.below(3) == 0 {
        Outcome::Err
    } else {
        Outcome::Ok
    };
    match rng.below(7) {
        0 | 1 => {
            let event = match r.claim(id).await.unwrap() {
                Ok(attempt) => {
                    let lease = attempt.lease();
                    let granted = (lease.fence(), lease.epoch());
                    held.push((id, false, attempt));
                    Event::Launch(Ok(granted))
                }
                Err(refused) => Event::Launch(Err(refused.state())),
            };
            vec![(id, shifted, event)]
        }
        2 | 3 if !held.is_empty() => {
            let (id, revoke, attempt) = held.remove(rng.below(held.len() as u64) as usize);
            let fence = attempt.lease().fence();
            let finish = attempt.finish(outcome).await.unwrap();
            let event = if revoke {
                Event::RevokeEnd(fence, outcome, finish)
            } else {
                Event::Finish(fence, outcome, finish)
            };
            vec![(id, shifted, event)]
        }
        4 => {
            let event = match r.revoke_begin(id).await.unwrap() {
                Ok(attempt) => {
                    let fence = attempt.lease().fence();
                    held.push((id, true, attempt));
                    Event::RevokeBegin(Ok(fence))
                }
                Err(refused) => Event::RevokeBegin(Err(refused)),
            };
            vec![(id, shifted, event)]
        }
        5 => {
            let expired: Vec<i64> = r
                .sweep(1000)
                .await
                .unwrap()
                .into_iter()
                .map(|(id, _)| id)
                .collect();
            // A sweep skips rows another statement holds (SKIP LOCKED), so
            // an id it left alone says nothing; one it expired is an event.
            expired
                .into_iter()
                .map(|id| (id, shifted, Event::Sweep(true)))
                .collect()
        }
        _ => vec![(id, shifted, Event::Query(r.query(&id).await.unwrap()))],
    }
}

/// Finishes every held attempt (recorded), so none settles unrecorded.
async fn finish_all(held: Held, shifted: bool) -> Vec<(i64, bool, Event)> {
    let mut events = Vec::new();
    for (id, revoke, attempt) in held {
        let fence = attempt.lease().fence();
        let finish = attempt.finish(Outcome::Err).await.unwrap();
        let event = if revoke {
            Event::RevokeEnd(fence, Outcome::Err, finish)
        } else {
            Event::Finish(fence, Outcome::Err, finish)
        };
        events.push((id, shifted, event));
    }
    events
}

/// Runs `sequences` random sequences; the first divergence from the spec.
async fn sequential_run(sql: Statements, sequences: u64, seed: u64) -> Result<usize, String> {
    let replicas = replicas(sql).await;
    let mut steps = 0;
    for case in 0..sequences {
        let mut rng = Xorshift::new(seed ^ (case + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let ids = [case as i64 * 2, case as i64 * 2 + 1];
        let mut records: HashMap<i64, Record> = ids.iter().map(|id| (*id, Record::NEW)).collect();
        let mut held = Held::new();
        for _ in 0..12 {
            for (id, shifted, event) in random_op(&replicas, &mut rng, &ids, &mut held).await {
                let record = records[&id];
                let next = apply(record, shifted, &event)
                    .map_err(|e| format!("sequence {case} (seed {seed}), id {id}: {e}"))?;
                records.insert(id, next);
                steps += 1;
            }
        }
        for (id, shifted, event) in finish_all(held, false).await {
            let next = apply(records[&id], shifted, &event)
                .map_err(|e| format!("sequence {case} (seed {seed}), id {id}: {e}"))?;
            records.insert(id, next);
        }
    }
    Ok(steps)
}

/// Three clients (one of them shifted past every lease) run random
/// operations on two ids at once; each id's history must be linearizable.
async fn concurrent_run(sql: Statements, histories: u64, seed: u64) -> Result<usize, String> {
    let replicas = std::sync::Arc::new(replicas(sql).await);
    let mut checked = 0;
    for case in 0..histories {
        let ids = vec![1_000_000 + case as i64 * 2, 1_000_000 + case as i64 * 2 + 1];
        let began = Instant::now();
        let mut clients = Vec::new();
        for client in 0..3u64 {
            let replicas = replicas.clone();
            let ids = ids.clone();
            let mut rng = Xorshift::new(
                seed ^ (case * 3 + client + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            );
            clients.push(tokio::spawn(async move {
                let mut timed = Vec::new();
                let mut held = Held::new();
                let mut record = |invoked, returned, events: Vec<(i64, bool, Event)>| {
                    for (id, shifted, event) in events {
                        timed.push((id, Timed::new(Seen { shifted, event }, invoked, returned)));
                    }
                };
                for _ in 0..5 {
                    let invoked = began.elapsed();
                    let events = random_op(&replicas, &mut rng, &ids, &mut held).await;
                    record(invoked, began.elapsed(), events);
                }
                let invoked = began.elapsed();
                let events = finish_all(held, false).await;
                record(invoked, began.elapsed(), events);
                timed
            }));
        }
        let mut per_id: HashMap<i64, Vec<Timed>> = HashMap::new();
        for client in clients {
            for (id, op) in client.await.unwrap() {
                per_id.entry(id).or_default().push(op);
            }
        }
        for (id, ops) in per_id {
            linearizable(&FencedSpec::default(), &ops)
                .map_err(|e| format!("history {case} (seed {seed}), id {id}: {e}"))?;
            checked += 1;
        }
    }
    Ok(checked)
}

/// `ATR_PG_SEED`, or one read off the clock; every run prints its seed.
fn seed() -> u64 {
    let clock = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    env_or("ATR_PG_SEED", clock)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequences_follow_the_fenced_spec() {
    let (n, seed) = (env_or("ATR_PG_SEQUENCES", 40), seed());
    let sql = Statements::new(&table("seq"), "bigint");
    let steps = within(600, "sequential model run", sequential_run(sql, n, seed))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("{n} sequences, {steps} steps matched the spec (seed {seed})");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_histories_are_linearizable() {
    let (n, seed) = (env_or("ATR_PG_HISTORIES", 25), seed());
    let sql = Statements::new(&table("lin"), "bigint");
    let checked = within(600, "concurrent run", concurrent_run(sql, n, seed))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("{n} concurrent histories, {checked} per-id histories linearizable (seed {seed})");
}

/// Bite: the sequential comparison catches an unfenced finish.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bite_the_model_run_catches_an_unfenced_finish() {
    let sql = Statements::new(&table("seqbite"), "bigint").known_bad(KnownBad::FinishWithoutFence);
    let error = within(600, "sequential bite run", sequential_run(sql, 200, 7))
        .await
        .unwrap_err();
    assert!(
        error.contains("Finish(") && error.contains("the spec answers Stale"),
        "{error}"
    );
}

/// Bite: the checker rejects two successes in one epoch, in any order.
#[test]
fn the_checker_rejects_a_second_success_in_one_epoch() {
    let op = |invoked, returned, event| {
        let at = Duration::from_millis;
        let seen = Seen {
            shifted: false,
            event,
        };
        Timed::new(seen, at(invoked), at(returned))
    };
    let history = [
        op(0, 1, Event::Launch(Ok((1, 0)))),
        op(2, 3, Event::Finish(1, Outcome::Ok, Finish::Applied)),
        op(4, 5, Event::Launch(Ok((2, 0)))),
        op(6, 7, Event::Finish(2, Outcome::Ok, Finish::Applied)),
    ];
    assert!(
        linearizable(&FencedSpec::default(), &history)
            .unwrap_err()
            .starts_with("not linearizable")
    );
    // The same with the second launch refused is fine.
    let history = [
        op(0, 1, Event::Launch(Ok((1, 0)))),
        op(2, 3, Event::Finish(1, Outcome::Ok, Finish::Applied)),
        op(4, 5, Event::Launch(Err(TaskState::Success))),
    ];
    linearizable(&FencedSpec::default(), &history).unwrap();
    // Overlapping operations may take effect in either order.
    let history = [
        op(0, 1, Event::Launch(Ok((1, 0)))),
        op(2, 6, Event::Query(TaskState::Success)),
        op(3, 5, Event::Finish(1, Outcome::Ok, Finish::Applied)),
    ];
    linearizable(&FencedSpec::default(), &history).unwrap();
}

/// Bite: the sequential comparison catches a read that computes expiry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bite_the_model_run_catches_expiry_in_the_read() {
    let sql = Statements::new(&table("readbite"), "bigint").known_bad(KnownBad::ReadComputesExpiry);
    let error = within(600, "read-path expiry run", sequential_run(sql, 200, 11))
        .await
        .unwrap_err();
    assert!(error.contains("query read Failed"), "{error}");
}
