//! The wedges of the published crates that the README's comparison names,
//! shown on the crates themselves, each beside this crate's behaviour.

use async_tasks_recorder::{AsyncTasksRecorder, TaskState};
use async_tasks_recorder_harness::bounded::within;
use async_tasks_recorder_harness::support::{poll_once, task_panic};
use async_tasks_recorder_v2 as v2;
use async_tasks_state_map as state_map;
use std::future::Future;
use std::time::Duration;
use tokio::sync::oneshot;

async fn ok() -> Result<(), ()> {
    Ok(())
}

/// A task that reports it has started, then panics.
fn panics() -> (
    oneshot::Receiver<()>,
    impl Future<Output = Result<(), ()>> + Send + 'static,
) {
    let (started, entered) = oneshot::channel();
    let task = async move {
        started.send(()).ok();
        task_panic()
    };
    (entered, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_2_0_2_reads_working_forever_after_a_refused_launch() {
    let published = v2::AsyncTasksRecorder::new();
    published.launch_block(1u32, ok()).await.ok();
    assert!(published.launch(1, ok()).await.is_err());
    assert_eq!(published.query_task_state(&1).await, v2::TaskState::Working);

    let ours = AsyncTasksRecorder::new();
    ours.launch_block(1u32, ok()).await.ok();
    assert!(ours.launch(1, ok()).await.is_err());
    assert_eq!(ours.query_task_state(&1).await, TaskState::Success);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_2_0_2_blocks_every_revoke_after_a_refused_one() {
    let published = v2::AsyncTasksRecorder::new();
    assert!(published.revoke_task_block(1u32, ok()).await.is_err());
    published.launch_block(1, ok()).await.ok();
    assert!(matches!(
        published.revoke_task_block(1, ok()).await,
        Err(v2::RevokeFailReason::Revoking(_))
    ));

    let ours = AsyncTasksRecorder::new();
    assert!(ours.revoke_task_block(1u32, ok()).await.is_err());
    ours.launch_block(1, ok()).await.ok();
    assert!(ours.revoke_task_block(1, ok()).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_crates_read_working_forever_after_a_panic() {
    let published = v2::AsyncTasksRecorder::new();
    let (entered, task) = panics();
    published.launch(1u32, task).await.ok();
    within(1, entered).await.unwrap();
    let state_map = state_map::AsyncTasksRecorder::new();
    let (entered, task) = panics();
    state_map.launch(1u32, task).await.ok();
    within(1, entered).await.unwrap();
    let ours = AsyncTasksRecorder::new();
    let (entered, task) = panics();
    ours.launch(1u32, task).await.ok();
    within(1, entered).await.unwrap();
    // Ours settles the attempt as the panic unwinds; the peers never do.
    assert_eq!(within(1, ours.wait(&1)).await, TaskState::Failed);
    assert_eq!(published.query_task_state(&1).await, v2::TaskState::Working);
    assert_eq!(
        state_map.query_task_state(&1).await,
        state_map::TaskState::Working
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_crates_read_working_forever_after_a_cancelled_launch_block() {
    let pending = std::future::pending::<Result<(), ()>>;
    let timeout = Duration::from_millis(10);

    let published = v2::AsyncTasksRecorder::new();
    let _ = tokio::time::timeout(timeout, published.launch_block(1u32, pending())).await;
    assert_eq!(published.query_task_state(&1).await, v2::TaskState::Working);

    let state_map = state_map::AsyncTasksRecorder::new();
    let _ = tokio::time::timeout(timeout, state_map.launch_block(1u32, pending())).await;
    assert_eq!(
        state_map.query_task_state(&1).await,
        state_map::TaskState::Working
    );

    let ours = AsyncTasksRecorder::new();
    let _ = tokio::time::timeout(timeout, ours.launch_block(1u32, pending())).await;
    assert_eq!(ours.query_task_state(&1).await, TaskState::Failed);
}

#[test]
fn a_launch_outside_a_runtime_panics_in_2_0_2_and_is_refused_here() {
    let published = v2::AsyncTasksRecorder::new();
    let outcome = std::panic::catch_unwind(|| block_on_here(published.launch(1u32, ok())));
    assert!(outcome.is_err());

    let ours = AsyncTasksRecorder::new();
    let refused = block_on_here(ours.launch(1u32, ok()));
    assert!(matches!(refused, Err((TaskState::NotFound, _))));
}

/// Polls a future to completion on this thread, outside any tokio runtime.
fn block_on_here<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    loop {
        if let std::task::Poll::Ready(output) = poll_once(future.as_mut()) {
            return output;
        }
        std::thread::yield_now();
    }
}
