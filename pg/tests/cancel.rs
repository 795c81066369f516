//! A caller may drop any call's future at any await point: the attempt is
//! settled all the same, at once, never left holding its id for a lease.
//! Each test drops the call after its first, second, … suspension, until
//! the call completes before it is dropped, so every await point at which
//! the call actually waited is covered; the lease (60 s) is far longer
//! than the test, so only a settled attempt frees the id.

mod common;

use async_tasks_recorder_pg::{Outcome, PgRecorder, Phase};
use common::{drop_at, recorder, settings, within};
use std::future::Future;
use std::time::Duration;

/// A task body with an await point of its own.
async fn body() -> Result<(), ()> {
    tokio::time::sleep(Duration::from_millis(5)).await;
    Ok(())
}

/// How long an id may show no new fence before a dropped call is taken
/// to have been cut before its grant was sent (its read runs in the
/// caller's task, so a drop there sends nothing).
const NO_GRANT: Duration = Duration::from_secs(1);

/// Waits until `id` is neither `Working` nor `Revoking` and either holds
/// a fence above `before` (the grant ran on without its caller) or has
/// shown none for [`NO_GRANT`] (the call was cut before its write): its
/// phase then, and whether a grant was made.
async fn settled(recorder: &PgRecorder<i64>, id: i64, before: u64, what: &str) -> (Phase, bool) {
    within(10, &format!("id {id} settled after {what}"), async {
        let since = tokio::time::Instant::now();
        loop {
            let now = recorder.read(&id).await.unwrap();
            let held = matches!(now.phase, Phase::Working | Phase::Revoking);
            if !held && now.fence > before {
                return (now.phase, true);
            }
            if !held && since.elapsed() >= NO_GRANT {
                return (now.phase, false);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
}

/// Runs `call(recorder, id)` for fresh ids, dropping it at its k-th
/// suspension for k = 0, 1, … until it completes undropped; after each
/// drop the id must settle to one of `allowed`. Returns how many await
/// points were cut.
async fn every_drop<Fut>(
    what: &str,
    recorder: &PgRecorder<i64>,
    first_id: i64,
    prepare: impl AsyncFn(&PgRecorder<i64>, i64),
    call: impl Fn(PgRecorder<i64>, i64) -> Fut,
    allowed: &[Phase],
) -> usize
where
    Fut: Future,
{
    for k in 0..64 {
        let id = first_id + k as i64;
        prepare(recorder, id).await;
        let before = recorder.read(&id).await.unwrap();
        let done = drop_at(k as u64, call(recorder.clone(), id)).await;
        let (phase, granted) = settled(recorder, id, before.fence, what).await;
        assert!(
            allowed.contains(&phase) || (!granted && phase == before.phase),
            "id {id}: {what} dropped at suspension {k} left it {phase:?}"
        );
        if done.is_some() {
            assert!(k > 0, "{what} never suspended: nothing was cut");
            return k;
        }
    }
    panic!("{what} still suspended after 64 polls");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_dropped_at_any_await_point_settles_its_attempt() {
    within(120, "drops at every await point", async {
        let recorder = recorder::<i64>("cancel", settings(Duration::from_secs(60))).await;
        let nothing = async |_: &PgRecorder<i64>, _: i64| {};
        let succeeded = async |r: &PgRecorder<i64>, id: i64| {
            let (_, finish) = r.launch_block(id, |_| body()).await.unwrap();
            finish.unwrap();
        };
        let settled_launch = [Phase::Success, Phase::Failed];
        let settled_revoke = [Phase::NotFound, Phase::Success];

        let cut = every_drop(
            "launch",
            &recorder,
            1_000,
            nothing,
            |r, id| async move { r.launch(id, |_| body()).await.map(drop) },
            &settled_launch,
        )
        .await;
        println!("launch: {cut} await points cut");
        let cut = every_drop(
            "launch_block",
            &recorder,
            2_000,
            nothing,
            |r, id| async move { r.launch_block(id, |_| body()).await.map(drop) },
            &settled_launch,
        )
        .await;
        println!("launch_block: {cut} await points cut");
        let cut = every_drop(
            "finish",
            &recorder,
            3_000,
            nothing,
            |r, id| async move {
                let attempt = r.claim(id).await.unwrap().unwrap();
                attempt.finish(Outcome::Ok).await
            },
            &settled_launch,
        )
        .await;
        println!("claim and finish: {cut} await points cut");
        let cut = every_drop(
            "revoke",
            &recorder,
            4_000,
            succeeded,
            |r, id| async move { r.revoke(id, |_| body()).await.map(drop) },
            &settled_revoke,
        )
        .await;
        println!("revoke: {cut} await points cut");
    })
    .await
}
