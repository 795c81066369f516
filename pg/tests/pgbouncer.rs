//! The recorder behind a real PgBouncer in transaction mode with a pool of 2
//! server connections (`common::pooler`), with `Config::pooler` set: the
//! shared harness's sequential model test and concurrent schedules, many
//! tasks on the small pool, two processes sharing it, and the start-up
//! check of the server's defaults.
//!
//! In transaction mode each statement may run in another server session,
//! and two clients' statements share sessions: named prepared statements
//! then fail (`prepared statement "s8" does not exist`) or collide
//! (`already exists`, or another process's statement of the same name and
//! parameter types runs instead). The bite shows these tests catch that.

mod common;

use async_tasks_recorder_harness::concurrent::{ABRUPT, check_schedule, schedule};
use async_tasks_recorder_harness::sequential;
use async_tasks_recorder_harness::subject::Via;
use async_tasks_recorder_harness::support::cases;
use async_tasks_recorder_pg::cluster::{POOLER_PORT, USER};
use async_tasks_recorder_pg::{
    Config, Error, Finish, LaunchRefusal, Outcome, PgRecorder, Phase, TaskState,
};
use common::adapter::Pg;
use common::{POOLED_DATABASE, cluster, pooler, table, within};
use proptest::test_runner::{Config as Cases, TestRunner};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// Set in the environment of the second process of
/// [`pgbouncer_two_processes_share_the_pool`]: the pooler's socket
/// directory and the table, `|`-separated.
const CHILD: &str = "ATR_PGBOUNCER_CHILD";

/// The settings of the recorders here: behind a pooler, short leases so
/// that renewals run too.
fn pooled() -> Config {
    Config {
        lease: Duration::from_secs(3),
        pool_size: 8,
        pooler: true,
        ..Config::default()
    }
}

/// A recorder on table `name` through the pooler whose socket is in `dir`.
fn through(dir: PathBuf, name: &str) -> PgRecorder<i64> {
    let mut config = tokio_postgres::Config::new();
    config
        .host_path(dir)
        .port(POOLER_PORT)
        .user(USER)
        .dbname(POOLED_DATABASE);
    PgRecorder::new(config, name, pooled()).unwrap()
}

/// An answer as a failure shows it: the server's own words for an error.
fn shown<T: std::fmt::Debug>(answer: Result<T, Error>) -> String {
    match answer {
        Ok(answer) => format!("{answer:?}"),
        Err(e) => e.to_string(),
    }
}

/// One id's whole life, every statement but the sweep's: a claim that
/// fails, a claim that succeeds, a refused claim, a revoke, the reads and
/// a page and a count between. `Err` names the first answer that is not
/// the one the id's life calls for (or an error).
async fn life(recorder: &PgRecorder<i64>, id: i64) -> Result<(), String> {
    let wrong = |what: &str, got: String| Err(format!("id {id}: {what} answered {got}"));
    let expect = |what: &str, got: Result<TaskState, Error>, want: TaskState| match got {
        Ok(state) if state == want => Ok(()),
        other => Err(format!(
            "id {id}: {what} answered {}, not {want:?}",
            shown(other)
        )),
    };
    for (outcome, then) in [
        (Outcome::Err, TaskState::Failed),
        (Outcome::Ok, TaskState::Success),
    ] {
        let attempt = match recorder.claim(id).await {
            Ok(Ok(attempt)) => attempt,
            other => return wrong("a claim", shown(other.map(|a| a.is_ok()))),
        };
        match attempt.finish(outcome).await {
            Ok(Finish::Applied) => {}
            other => return wrong("a finish", shown(other)),
        }
        expect("a query", recorder.query(&id).await, then)?;
    }
    match recorder.claim(id).await {
        Ok(Err(LaunchRefusal::Success)) => {}
        other => return wrong("a claim of a success", shown(other.map(|a| a.err()))),
    }
    let revoke = match recorder.revoke_begin(id).await {
        Ok(Ok(revoke)) => revoke,
        other => return wrong("a revoke", shown(other.map(|a| a.is_ok()))),
    };
    match revoke.finish(Outcome::Ok).await {
        Ok(Finish::Applied) => {}
        other => return wrong("a revoke end", shown(other)),
    }
    match recorder.read(&id).await {
        Ok(stored) if stored.phase == Phase::NotFound && stored.epoch == 1 => {}
        other => return wrong("a read of a revoked id", shown(other)),
    }
    match recorder.list_page(TaskState::Success, Some(&id), 4).await {
        Ok(page) if !page.ids.contains(&id) => {}
        other => return wrong("a page of Success", shown(other)),
    }
    match recorder.count(TaskState::Failed).await {
        Ok(_) => Ok(()),
        Err(e) => wrong("a count", e.to_string()),
    }
}

/// `tasks` tasks at once, each living `lives` ids of its own from `base`
/// on: the first wrong answer, if any.
async fn exercise(
    recorder: &PgRecorder<i64>,
    base: i64,
    tasks: i64,
    lives: i64,
) -> Result<(), String> {
    let running: Vec<_> = (0..tasks)
        .map(|task| {
            let recorder = recorder.clone();
            tokio::spawn(async move {
                for n in 0..lives {
                    life(&recorder, base + task * lives + n).await?;
                }
                Ok::<(), String>(())
            })
        })
        .collect();
    for task in running {
        task.await.map_err(|e| e.to_string())??;
    }
    Ok(())
}

#[test]
fn pgbouncer_agrees_with_the_spec_after_every_step() {
    sequential::check::<Via<Pg<true, true>>>(cases(24));
}

#[test]
fn pgbouncer_keeps_every_property_in_concurrent_schedules() {
    let config = Cases {
        cases: cases(8),
        failure_persistence: None,
        ..Cases::default()
    };
    TestRunner::new(config)
        .run(&schedule(ABRUPT), |schedule| {
            check_schedule::<Via<Pg<true, true>>>(&schedule).map_err(|violation| {
                proptest::test_runner::TestCaseError::fail(violation.to_string())
            })
        })
        .unwrap();
}

/// 8 tasks × 25 ids' whole lives on a pool of 2 server sessions: every
/// answer right, no call refused by the pooler or the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgbouncer_serves_many_tasks_on_a_pool_of_two() {
    let name = table("many");
    let recorder = through(pooler().socket_dir(), &name);
    within(120, "8 tasks behind the pooler", async {
        recorder
            .install()
            .await
            .unwrap_or_else(|e| panic!("install behind the pooler: {e}"));
        exercise(&recorder, 0, 8, 25).await
    })
    .await
    .unwrap_or_else(|why| panic!("{why}"));
}

/// Two processes (this test binary again, as a child) share the pooler and
/// one table, each 4 tasks × 20 ids of its own: every answer right in both.
/// Named statements fail here as in one process, and collide as well:
/// statement names come from a per-process counter, so both processes'
/// `s0` meet in one server session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgbouncer_two_processes_share_the_pool() {
    if let Ok(child) = std::env::var(CHILD) {
        let (dir, name) = child.split_once('|').expect("dir|table");
        let recorder = through(PathBuf::from(dir), name);
        let lived = within(
            120,
            "the second process",
            exercise(&recorder, 1_000_000, 4, 20),
        );
        return lived
            .await
            .unwrap_or_else(|why| panic!("second process: {why}"));
    }
    let name = table("shared");
    let dir = pooler().socket_dir();
    let recorder = through(dir.clone(), &name);
    recorder
        .install()
        .await
        .unwrap_or_else(|e| panic!("install behind the pooler: {e}"));
    let second = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "pgbouncer_two_processes_share_the_pool",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, format!("{}|{name}", dir.display()))
        .output();
    let (second, first) = tokio::join!(
        tokio::task::spawn_blocking(|| second),
        within(120, "the first process", exercise(&recorder, 0, 4, 20)),
    );
    first.unwrap_or_else(|why| panic!("first process: {why}"));
    let second = second.unwrap().expect("run the second process");
    assert!(
        second.status.success(),
        "the second process failed:\n{}{}",
        String::from_utf8_lossy(&second.stdout),
        String::from_utf8_lossy(&second.stderr)
    );
}

/// The bite: the same tasks with statements prepared under names, as the
/// crate did before `Config::pooler`, get wrong answers or errors from the
/// pooler, so the tests above can fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bite_named_statements_fail_behind_pgbouncer() {
    let name = table("named");
    let recorder = through(pooler().socket_dir(), &name);
    recorder
        .install()
        .await
        .unwrap_or_else(|e| panic!("install behind the pooler: {e}"));
    recorder.name_statements(true);
    let lived = within(120, "named statements behind the pooler", async {
        exercise(&recorder, 0, 8, 25).await
    })
    .await;
    let why = lived.expect_err("named statements passed behind PgBouncer: the bite cannot bite");
    assert!(
        why.contains("prepared statement"),
        "named statements failed, but not on a prepared statement: {why}"
    );
}

/// Behind a pooler nothing can be set at start-up, so the first call reads
/// the server's defaults and refuses those the proofs do not assume,
/// naming each with the line that sets it, before any statement is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgbouncer_refuses_defaults_the_proofs_do_not_assume() {
    let pooler = pooler();
    for sql in [
        "CREATE DATABASE lax",
        "ALTER DATABASE lax SET default_transaction_isolation = 'serializable'",
        "ALTER DATABASE lax SET synchronous_commit = off",
    ] {
        cluster().psql("postgres", sql).unwrap();
    }
    let name = table("lax");
    let lax = PgRecorder::<i64>::new(pooler.config("lax"), &name, pooled()).unwrap();
    let refused = within(30, "a claim under lax defaults", lax.claim(1)).await;
    match refused {
        Err(Error::Settings(why)) => {
            for wanted in [
                "default_transaction_isolation is \"serializable\"",
                "synchronous_commit is \"off\"",
                "ALTER ROLE",
            ] {
                assert!(why.contains(wanted), "{why} does not say {wanted:?}");
            }
        }
        other => panic!(
            "a claim under lax defaults answered {:?}",
            other.map(|a| a.is_ok())
        ),
    }
    assert!(!Error::Settings(String::new()).is_in_doubt());
}
