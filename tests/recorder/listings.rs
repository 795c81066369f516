//! Listings and counts: they agree with the queries, and the failed ids,
//! walked from their own index, follow every way into and out of `Failed`.

use super::{Accepted, Recorder, err, gated, ok, panics};
use async_tasks_recorder::TaskState;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_and_counts_agree_with_queries() {
    let recorder = Recorder::new();
    let mut gates = Vec::new();
    for id in 0..30u64 {
        match id % 3 {
            0 => drop(recorder.launch_block(id, ok()).await.accepted()),
            1 => drop(recorder.launch_block(id, err()).await.accepted()),
            _ => {
                let (release, task) = gated();
                recorder.launch(id, task).await.accepted();
                gates.push(release);
            }
        }
    }
    for state in [TaskState::Success, TaskState::Failed, TaskState::Working] {
        let mut listed = recorder.list_tasks(state);
        listed.sort_unstable();
        let expected: Vec<u64> = (0..30)
            .filter(|id| recorder.query_task_state_sync(id) == state)
            .collect();
        assert_eq!(listed, expected, "{state:?}");
        assert_eq!(recorder.count_tasks(state), 10);
    }
    assert!(recorder.list_tasks(TaskState::NotFound).is_empty());
    assert_eq!(recorder.count_tasks(TaskState::NotFound), 0);
    assert_eq!(recorder.len(), 30);
    drop(gates);
}

/// Every way into `Failed` (an `Err` in place or spawned, a panic, a
/// cancelled `launch_block`, a task dropped at runtime shutdown) puts the id
/// in the failed listing and count, which walk their own index; a relaunch,
/// spawned or in place, takes it out, and one that fails again puts it back.
/// Successes and revokes never appear there.
#[test]
fn the_failed_index_follows_every_way_into_and_out_of_failed() {
    let recorder = Recorder::new();
    let failed = |recorder: &Recorder| {
        let mut ids = recorder.list_tasks(TaskState::Failed);
        ids.sort_unstable();
        let count = recorder.count_tasks(TaskState::Failed);
        assert_eq!(count, recorder.state_counts().failed, "count_tasks(Failed)");
        (ids, count)
    };
    // Bounded: a wedged id fails the test, naming it, instead of hanging it.
    async fn settled(recorder: &Recorder, id: u64) -> TaskState {
        tokio::time::timeout(Duration::from_secs(10), recorder.wait(&id))
            .await
            .unwrap_or_else(|_| panic!("id {id} still Working after 10 s"))
    }

    // A runtime whose shutdown drops the task of id 6 mid-run.
    let doomed = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .unwrap();
    doomed.block_on(async {
        recorder
            .launch(6, std::future::pending::<Result<(), ()>>())
            .await
            .accepted();
    });
    drop(doomed);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    runtime.block_on(async {
        assert_eq!(recorder.launch_block(1, err()).await.accepted(), Err(()));
        recorder.launch(2, err()).await.accepted();
        recorder.launch(3, panics("task")).await.accepted();
        let cancelled = tokio::time::timeout(
            Duration::from_millis(5),
            recorder.launch_block(4, std::future::pending::<Result<(), ()>>()),
        );
        assert!(cancelled.await.is_err(), "a pending launch_block returned");
        recorder.launch_block(5, ok()).await.accepted().unwrap();
        for id in 1..=6 {
            settled(&recorder, id).await;
        }
        assert_eq!(failed(&recorder), (vec![1, 2, 3, 4, 6], 5));

        // Out: in place to Success; spawned and still Working; spawned and
        // failing again, which leaves `Failed` and enters it once more.
        recorder.launch_block(1, ok()).await.accepted().unwrap();
        let (release, task) = gated();
        recorder.launch(2, task).await.accepted();
        recorder.launch(3, err()).await.accepted();
        assert_eq!(settled(&recorder, 3).await, TaskState::Failed);
        assert_eq!(failed(&recorder), (vec![3, 4, 6], 3));
        release.send(()).unwrap();
        assert_eq!(settled(&recorder, 2).await, TaskState::Success);

        // A revoke of a success, and a refused relaunch of one, touch nothing.
        assert!(recorder.revoke_task_block(1, ok()).await.is_ok());
        assert!(recorder.launch_block(5, ok()).await.is_err());
        assert_eq!(failed(&recorder), (vec![3, 4, 6], 3));
    });
}

/// Keyset pages of 3 while ids enter and leave `Failed` between pages: each
/// page is the one the ids then in the state give, and the walk returns
/// every id failed throughout exactly once (the shared check, which the
/// PostgreSQL backend passes too, `pg/tests/harness.rs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_return_every_id_once_as_ids_come_and_go() {
    let recorder = async_tasks_recorder_harness::protocol::recorder();
    async_tasks_recorder_harness::paging::check(&recorder)
        .await
        .unwrap_or_else(|why| panic!("{why}"));
}

/// A page holds the smallest ids after the cursor, however many ids the
/// state has and in whatever order the map walks them.
#[test]
fn a_page_is_the_smallest_ids_after_its_cursor() {
    let recorder = Recorder::new();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let ids: Vec<u64> = (0..1000).map(|n| (n * 7919) % 1000).collect();
    runtime.block_on(async {
        for &id in &ids {
            assert!(recorder.launch_block(id, err()).await.accepted().is_err());
        }
    });
    let mut walked = Vec::new();
    let mut after = None;
    // 16 pages of 64 hold 1,000 ids: a walk that does not end by then is
    // a failure, not a hang.
    for _ in 0..=16 {
        let page = recorder.list_page(TaskState::Failed, after.as_ref(), 64);
        assert!(page.ids.len() <= 64);
        walked.extend(page.ids.iter().copied());
        after = page.next;
        if after.is_none() {
            break;
        }
    }
    assert_eq!(after, None, "the walk did not end after 17 pages");
    assert_eq!(walked, (0..1000).collect::<Vec<u64>>());
}
