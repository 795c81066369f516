//! The recorder's rules, each wedge case included, on tokio multi-thread runtimes:
//! launches and revokes here, `wait` in `recorder/waits.rs`, listings and
//! counts in `recorder/listings.rs`.
//!
//! Every wait is bounded ([`within`]): a wedged id or a lost wake-up fails
//! its test within seconds, naming the id, instead of hanging the suite.

use async_tasks_recorder::{AsyncTasksRecorder, RevokeFailReason, StateCounts, TaskState};
use async_tasks_recorder_harness::bounded::within;
use std::collections::hash_map::RandomState;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tokio::sync::oneshot;

#[path = "recorder/listings.rs"]
mod listings;
#[path = "recorder/waits.rs"]
mod waits;

type Recorder = AsyncTasksRecorder<u64>;

/// A task that ends when `release` is sent (Ok) or dropped (Err).
fn gated() -> (
    oneshot::Sender<()>,
    impl Future<Output = Result<(), ()>> + Send + 'static,
) {
    let (release, gate) = oneshot::channel::<()>();
    (release, async move { gate.await.map_err(|_| ()) })
}

/// Unwraps an accepted launch; names the state of a refused one.
trait Accepted<T> {
    fn accepted(self) -> T;
}

impl<T, F> Accepted<T> for Result<T, (TaskState, F)> {
    fn accepted(self) -> T {
        match self {
            Ok(output) => output,
            Err((state, _)) => panic!("launch refused with {state:?}"),
        }
    }
}

async fn ok() -> Result<(), ()> {
    Ok(())
}

async fn err() -> Result<(), ()> {
    Err(())
}

/// A task (or compensation) that panics when first polled, naming `what`
/// in its message.
async fn panics(what: &'static str) -> Result<(), ()> {
    panic!("{what} panicked on purpose")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_launched_task_is_working_then_success() {
    let recorder = Recorder::new();
    let (release, task) = gated();
    assert_eq!(recorder.query_task_state(&1).await, TaskState::NotFound);
    recorder.launch(1, task).await.accepted();
    assert_eq!(recorder.query_task_state(&1).await, TaskState::Working);
    release.send(()).unwrap();
    assert_eq!(within(1, recorder.wait(&1)).await, TaskState::Success);
    assert_eq!(recorder.query_task_state(&1).await, TaskState::Success);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_task_can_be_launched_again_and_succeed() {
    let recorder = Recorder::new();
    recorder.launch(7, err()).await.accepted();
    assert_eq!(within(7, recorder.wait(&7)).await, TaskState::Failed);
    recorder.launch(7, ok()).await.accepted();
    assert_eq!(within(7, recorder.wait(&7)).await, TaskState::Success);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_launch_on_a_working_id_is_refused_and_gives_the_future_back() {
    let recorder = Recorder::new();
    let (release, task) = gated();
    recorder.launch(1, task).await.accepted();
    let ran = Arc::new(AtomicUsize::new(0));
    let counted = {
        let ran = ran.clone();
        async move {
            ran.fetch_add(1, Ordering::SeqCst);
            Ok::<_, ()>(5)
        }
    };
    let Err((state, given_back)) = recorder.launch(1, counted).await else {
        panic!("launch on a working id was accepted");
    };
    assert_eq!(state, TaskState::Working);
    assert_eq!(
        ran.load(Ordering::SeqCst),
        0,
        "a refused future must not run"
    );
    assert_eq!(given_back.await, Ok(5));
    release.send(()).unwrap();
    assert_eq!(within(1, recorder.wait(&1)).await, TaskState::Success);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_launch_refused_for_success_leaves_no_residue() {
    let recorder = Recorder::new();
    recorder.launch_block(3, ok()).await.accepted().unwrap();
    for _ in 0..3 {
        let refused = recorder.launch(3, ok()).await;
        assert!(matches!(refused, Err((TaskState::Success, _))));
        let refused = recorder.launch_block(3, ok()).await;
        assert!(matches!(refused, Err((TaskState::Success, _))));
    }
    assert_eq!(recorder.query_task_state(&3).await, TaskState::Success);
    assert_eq!(recorder.list_tasks(TaskState::Success), vec![3]);
    assert!(recorder.list_tasks(TaskState::Working).is_empty());
    assert_eq!(
        recorder.state_counts(),
        StateCounts {
            working: 0,
            success: 1,
            failed: 0
        }
    );
    // The id is still revocable: the refusal left it exactly `Success`.
    assert!(recorder.revoke_task_block(3, ok()).await.is_ok());
    assert_eq!(recorder.query_task_state(&3).await, TaskState::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn launch_block_returns_the_task_output() {
    let recorder = Recorder::new();
    let output = recorder
        .launch_block(1, async { Err::<u8, _>("disk full") })
        .await;
    assert_eq!(output.ok(), Some(Err("disk full")));
    assert_eq!(recorder.query_task_state(&1).await, TaskState::Failed);
    let output = recorder.launch_block(1, async { Ok::<_, &str>(9) }).await;
    assert_eq!(output.ok(), Some(Ok(9)));
    assert_eq!(recorder.query_task_state(&1).await, TaskState::Success);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spawned_task_that_panics_ends_failed_and_can_be_retried() {
    let recorder = Recorder::new();
    recorder.launch(4, panics("task")).await.accepted();
    assert_eq!(within(4, recorder.wait(&4)).await, TaskState::Failed);
    recorder.launch(4, ok()).await.accepted();
    assert_eq!(within(4, recorder.wait(&4)).await, TaskState::Success);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_launch_block_that_panics_ends_failed_and_the_panic_reaches_the_caller() {
    let recorder = Recorder::new();
    let caller = {
        let recorder = recorder.clone();
        tokio::spawn(async move { recorder.launch_block(5, panics("task")).await.is_ok() })
    };
    assert!(within(5, caller).await.unwrap_err().is_panic());
    assert_eq!(recorder.query_task_state(&5).await, TaskState::Failed);
    assert!(recorder.launch_block(5, ok()).await.is_ok());
    assert_eq!(recorder.query_task_state(&5).await, TaskState::Success);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_launch_block_leaves_the_id_failed() {
    let recorder = Recorder::new();
    let (_release, task) = gated();
    let cancelled = tokio::time::timeout(Duration::from_millis(20), recorder.launch_block(6, task));
    assert!(cancelled.await.is_err(), "the gated task cannot finish");
    assert_eq!(recorder.query_task_state(&6).await, TaskState::Failed);
    assert!(recorder.launch_block(6, ok()).await.is_ok());
    assert_eq!(recorder.query_task_state(&6).await, TaskState::Success);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aborted_caller_of_launch_block_leaves_the_id_failed() {
    let recorder = Recorder::new();
    let (entered_tx, entered) = oneshot::channel();
    let caller = {
        let recorder = recorder.clone();
        tokio::spawn(async move {
            recorder
                .launch_block(8, async move {
                    entered_tx.send(()).unwrap();
                    std::future::pending::<Result<(), ()>>().await
                })
                .await
                .is_ok()
        })
    };
    within(8, entered).await.unwrap();
    assert_eq!(recorder.query_task_state(&8).await, TaskState::Working);
    caller.abort();
    assert!(within(8, caller).await.unwrap_err().is_cancelled());
    assert_eq!(recorder.query_task_state(&8).await, TaskState::Failed);
}

#[test]
fn tasks_dropped_at_runtime_shutdown_leave_their_ids_failed() {
    let recorder = Recorder::new();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    runtime.block_on(async {
        for id in 0..100 {
            recorder
                .launch(id, std::future::pending::<Result<(), ()>>())
                .await
                .accepted();
        }
    });
    assert_eq!(recorder.count_tasks(TaskState::Working), 100);
    drop(runtime);
    assert_eq!(recorder.count_tasks(TaskState::Failed), 100);
    assert_eq!(recorder.count_tasks(TaskState::Working), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_most_one_of_many_concurrent_launches_succeeds() {
    let recorder = Recorder::new();
    let effects = Arc::new(AtomicUsize::new(0));
    let mut launchers = Vec::new();
    for _ in 0..64 {
        let recorder = recorder.clone();
        let effects = effects.clone();
        launchers.push(tokio::spawn(async move {
            let task = async move {
                effects.fetch_add(1, Ordering::SeqCst);
                tokio::task::yield_now().await;
                Ok::<(), ()>(())
            };
            match recorder.launch_block(1, task).await {
                Ok(output) => Ok(output),
                Err((state, _)) => Err(state),
            }
        }));
    }
    let mut accepted = 0;
    for launcher in launchers {
        match within(1, launcher).await.unwrap() {
            Ok(output) => {
                assert_eq!(output, Ok(()));
                accepted += 1;
            }
            Err(state) => assert!(matches!(state, TaskState::Working | TaskState::Success)),
        }
    }
    assert_eq!(accepted, 1);
    assert_eq!(effects.load(Ordering::SeqCst), 1);
    assert_eq!(recorder.query_task_state(&1).await, TaskState::Success);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_is_refused_unless_the_id_is_success() {
    let recorder = Recorder::new();
    let refused = recorder.revoke_task_block(1, ok()).await;
    assert!(matches!(refused, Err(RevokeFailReason::NotSuccess(_))));
    recorder
        .launch_block(2, err())
        .await
        .accepted()
        .unwrap_err();
    let refused = recorder.revoke_task_block(2, ok()).await;
    assert!(matches!(refused, Err(RevokeFailReason::NotSuccess(_))));
    let (release, task) = gated();
    recorder.launch(3, task).await.accepted();
    let refused = recorder.revoke_task_block(3, ok()).await;
    assert!(matches!(refused, Err(RevokeFailReason::NotSuccess(_))));
    // No residue: once the id succeeds, the revoke goes through.
    release.send(()).unwrap();
    assert_eq!(within(3, recorder.wait(&3)).await, TaskState::Success);
    assert!(recorder.revoke_task_block(3, ok()).await.is_ok());
    // The same for an id refused while `NotFound`, then launched.
    recorder.launch_block(1, ok()).await.accepted().unwrap();
    assert!(recorder.revoke_task_block(1, ok()).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoking_id_reads_success_refuses_launches_and_a_second_revoke() {
    let recorder = Recorder::new();
    recorder.launch_block(1, ok()).await.accepted().unwrap();
    let (release, gate) = gated();
    let (entered_tx, entered) = oneshot::channel();
    let revoke = async move {
        entered_tx.send(()).unwrap();
        gate.await
    };
    let revoker = {
        let recorder = recorder.clone();
        tokio::spawn(async move { recorder.revoke_task_block(1, revoke).await })
    };
    within(1, entered).await.unwrap();
    let second = recorder.revoke_task_block(1, ok()).await;
    assert!(matches!(second, Err(RevokeFailReason::Revoking(_))));
    assert_eq!(recorder.query_task_state(&1).await, TaskState::Success);
    assert!(matches!(
        recorder.launch(1, ok()).await,
        Err((TaskState::Success, _))
    ));
    release.send(()).unwrap();
    assert!(within(1, revoker).await.unwrap().is_ok());
    assert_eq!(recorder.query_task_state(&1).await, TaskState::NotFound);
    // A new epoch: the id may succeed once more.
    recorder.launch_block(1, ok()).await.accepted().unwrap();
    assert_eq!(recorder.query_task_state(&1).await, TaskState::Success);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoke_that_fails_panics_or_is_cancelled_leaves_success_and_revocable() {
    let recorder = Recorder::new();
    recorder.launch_block(1, ok()).await.accepted().unwrap();

    let failed = recorder
        .revoke_task_block(1, async { Err::<(), _>("refund declined") })
        .await;
    assert!(matches!(
        failed,
        Err(RevokeFailReason::RevokeTaskError("refund declined"))
    ));
    assert_eq!(recorder.query_task_state(&1).await, TaskState::Success);

    let (_release, revoke) = gated();
    let cancelled = tokio::time::timeout(
        Duration::from_millis(20),
        recorder.revoke_task_block(1, revoke),
    );
    assert!(cancelled.await.is_err());
    assert_eq!(recorder.query_task_state(&1).await, TaskState::Success);

    let panicked = {
        let recorder = recorder.clone();
        tokio::spawn(async move {
            recorder
                .revoke_task_block(1, panics("revoke"))
                .await
                .is_ok()
        })
    };
    assert!(within(1, panicked).await.unwrap_err().is_panic());
    assert_eq!(recorder.query_task_state(&1).await, TaskState::Success);

    assert!(recorder.revoke_task_block(1, ok()).await.is_ok());
    assert_eq!(recorder.query_task_state(&1).await, TaskState::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_concurrent_revokes_exactly_one_wins() {
    let recorder = Recorder::new();
    recorder.launch_block(1, ok()).await.accepted().unwrap();
    let effects = Arc::new(AtomicUsize::new(0));
    let mut revokers = Vec::new();
    for _ in 0..32 {
        let recorder = recorder.clone();
        let effects = effects.clone();
        revokers.push(tokio::spawn(async move {
            let revoke = async move {
                effects.fetch_add(1, Ordering::SeqCst);
                tokio::task::yield_now().await;
                Ok::<(), ()>(())
            };
            recorder.revoke_task_block(1, revoke).await.is_ok()
        }));
    }
    let mut won = 0;
    for revoker in revokers {
        won += usize::from(within(1, revoker).await.unwrap());
    }
    assert_eq!(won, 1);
    assert_eq!(effects.load(Ordering::SeqCst), 1);
    assert_eq!(recorder.query_task_state(&1).await, TaskState::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quick_query_keeps_the_2x_contract() {
    let recorder = Recorder::new();
    assert_eq!(
        recorder.query_task_state_quick(&1).await,
        TaskState::Working
    );
    recorder.launch_block(1, ok()).await.accepted().unwrap();
    recorder
        .launch_block(2, err())
        .await
        .accepted()
        .unwrap_err();
    assert_eq!(
        recorder.query_task_state_quick(&1).await,
        TaskState::Success
    );
    assert_eq!(recorder.query_task_state_quick(&2).await, TaskState::Failed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clones_share_one_record_and_borrowed_keys_work() {
    let recorder: AsyncTasksRecorder<String, RandomState> =
        AsyncTasksRecorder::with_capacity_and_hasher(64, RandomState::new());
    let other = recorder.clone();
    recorder
        .launch_block("md5:abc".to_string(), ok())
        .await
        .accepted()
        .unwrap();
    assert_eq!(other.query_task_state("md5:abc").await, TaskState::Success);
    assert_eq!(
        within("md5:abc", other.wait("md5:abc")).await,
        TaskState::Success
    );
    let debug = format!("{other:?}");
    assert!(
        debug.contains("md5:abc") && debug.contains("Success"),
        "{debug}"
    );
    let default: AsyncTasksRecorder<String> = Default::default();
    assert!(default.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completed_revoke_leaves_no_entry_behind() {
    let recorder = Recorder::new();
    assert!(recorder.is_empty());
    recorder.launch_block(1, ok()).await.accepted().unwrap();
    recorder
        .launch_block(2, err())
        .await
        .accepted()
        .unwrap_err();
    assert!(!recorder.is_empty());
    assert_eq!(recorder.len(), 2);
    assert!(recorder.revoke_task_block(1, ok()).await.is_ok());
    // `NotFound` is the absence of an entry: a revoked id costs nothing.
    assert_eq!(recorder.len(), 1);
    assert!(!format!("{recorder:?}").contains("1:"), "{recorder:?}");
    recorder.launch_block(2, ok()).await.accepted().unwrap();
    assert!(recorder.revoke_task_block(2, ok()).await.is_ok());
    assert_eq!(recorder.len(), 0);
    assert!(recorder.is_empty());
}

fn multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap()
}

#[test]
fn a_launch_outside_a_runtime_is_refused_with_the_ids_state() {
    let runtime = multi_thread();
    let recorder = Recorder::new();
    let (_release, task) = gated();
    runtime.block_on(async {
        recorder
            .launch_block(1, err())
            .await
            .accepted()
            .unwrap_err();
        recorder.launch_block(2, ok()).await.accepted().unwrap();
        recorder.launch(3, task).await.accepted();
    });
    let ran = Arc::new(AtomicUsize::new(0));
    for (id, state) in [
        (0, TaskState::NotFound),
        (1, TaskState::Failed),
        (2, TaskState::Success),
        (3, TaskState::Working),
    ] {
        let counted = {
            let ran = ran.clone();
            async move {
                ran.fetch_add(1, Ordering::SeqCst);
                Ok::<(), ()>(())
            }
        };
        // Outside `block_on`: no runtime is current on this thread.
        let launch = std::pin::pin!(recorder.launch(id, counted));
        match launch.poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(Err((refused, _))) => assert_eq!(refused, state, "id {id}"),
            Poll::Ready(Ok(())) => panic!("id {id}: launched with no runtime to run it"),
            Poll::Pending => panic!("id {id}: a launch outside a runtime waited"),
        }
        assert_eq!(recorder.query_task_state_sync(&id), state, "id {id}");
    }
    assert_eq!(ran.load(Ordering::SeqCst), 0, "a refused task ran");
}
