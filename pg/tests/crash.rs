//! A crash of the server (`pg_ctl stop -m immediate`: no checkpoint,
//! recovery from the WAL at the next start) loses nothing acknowledged, and
//! fences stay increasing across it. Its own cluster, since it crashes it.

use async_tasks_recorder::spec::Phase;
use async_tasks_recorder_pg::cluster::Cluster;
use async_tasks_recorder_pg::{Config, Finish, Outcome, PgRecorder, TaskState};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_finishes_and_fences_survive_a_crash() {
    let cluster = Cluster::start().unwrap_or_else(|e| panic!("{e}"));
    let run = async {
        let settings = Config {
            lease: Duration::from_secs(30),
            ..Config::default()
        };
        let r =
            PgRecorder::<i64>::new(cluster.config("postgres"), "crash", settings.clone()).unwrap();
        r.install().await.unwrap();
        let mut highest = 0;
        for id in 0..50i64 {
            let attempt = r.claim(id).await.unwrap().unwrap();
            highest = highest.max(attempt.lease().fence());
            let outcome = if id % 2 == 0 {
                Outcome::Ok
            } else {
                Outcome::Err
            };
            assert_eq!(attempt.finish(outcome).await.unwrap(), Finish::Applied);
        }
        cluster.crash_restart().unwrap();
        // A fresh recorder: the old pool's connections died with the server.
        let r = PgRecorder::<i64>::new(cluster.config("postgres"), "crash", settings).unwrap();
        for id in 0..50i64 {
            let want = if id % 2 == 0 {
                Phase::Success
            } else {
                Phase::Failed
            };
            assert_eq!(
                r.read(&id).await.unwrap().phase,
                want,
                "id {id} after the crash"
            );
        }
        assert_eq!(r.count(TaskState::Success).await.unwrap(), 25);
        let relaunch = r.claim(1).await.unwrap().unwrap();
        assert!(
            relaunch.lease().fence() > highest,
            "fence {} after the crash, {highest} before",
            relaunch.lease().fence()
        );
        relaunch.finish(Outcome::Ok).await.unwrap();
    };
    tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("timed out after 120s: crash run");
}
