//! The recorder's rules, each wedge case included, on tokio multi-thread runtimes.
//!
//! Every wait is bounded ([`within`]): a wedged id or a lost wake-up fails
//! its test within seconds, naming the id, instead of hanging the suite.

use async_tasks_recorder::{AsyncTasksRecorder, RevokeFailReason, StateCounts, TaskState};
use async_tasks_recorder_harness::bounded::{BOUND, within};
use std::collections::hash_map::RandomState;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;
use tokio::sync::oneshot;

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
    recorder
        .launch(4, async {
            if true {
                panic!("task panicked on purpose");
            }
            Ok::<(), ()>(())
        })
        .await
        .accepted();
    assert_eq!(within(4, recorder.wait(&4)).await, TaskState::Failed);
    recorder.launch(4, ok()).await.accepted();
    assert_eq!(within(4, recorder.wait(&4)).await, TaskState::Success);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_launch_block_that_panics_ends_failed_and_the_panic_reaches_the_caller() {
    let recorder = Recorder::new();
    let caller = {
        let recorder = recorder.clone();
        tokio::spawn(async move {
            recorder
                .launch_block(5, async {
                    if true {
                        panic!("task panicked on purpose");
                    }
                    Ok::<(), ()>(())
                })
                .await
                .is_ok()
        })
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
                .revoke_task_block(1, async {
                    if true {
                        panic!("revoke panicked on purpose");
                    }
                    Ok::<(), ()>(())
                })
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
async fn wait_returns_at_once_unless_working() {
    let recorder = Recorder::new();
    assert_eq!(within(1, recorder.wait(&1)).await, TaskState::NotFound);
    recorder.launch_block(1, ok()).await.accepted().unwrap();
    assert_eq!(within(1, recorder.wait(&1)).await, TaskState::Success);
    recorder
        .launch_block(2, err())
        .await
        .accepted()
        .unwrap_err();
    assert_eq!(within(2, recorder.wait(&2)).await, TaskState::Failed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_waiter_wakes_with_the_final_state() {
    let recorder = Recorder::new();
    for (id, outcome) in [(1, TaskState::Success), (2, TaskState::Failed)] {
        let (release, task) = gated();
        recorder.launch(id, task).await.accepted();
        let waiters: Vec<_> = (0..16)
            .map(|_| {
                let recorder = recorder.clone();
                tokio::spawn(async move { within(id, recorder.wait(&id)).await })
            })
            .collect();
        tokio::task::yield_now().await;
        if outcome == TaskState::Success {
            release.send(()).unwrap();
        } else {
            drop(release);
        }
        for waiter in waiters {
            assert_eq!(within(id, waiter).await.unwrap(), outcome);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_waiter_does_not_disturb_the_others() {
    let recorder = Recorder::new();
    let (release, task) = gated();
    recorder.launch(1, task).await.accepted();
    // Bounded too: a `wait` that spins never lets the short timeout fire.
    let gone = within(
        1,
        tokio::time::timeout(Duration::from_millis(10), recorder.wait(&1)),
    )
    .await;
    assert!(gone.is_err());
    let waiter = {
        let recorder = recorder.clone();
        tokio::spawn(async move { within(1, recorder.wait(&1)).await })
    };
    release.send(()).unwrap();
    assert_eq!(within(1, waiter).await.unwrap(), TaskState::Success);
}

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

/// A waker that reports its first wake on a channel.
struct Reporting(std::sync::Mutex<Option<mpsc::Sender<()>>>);

impl Reporting {
    fn pair() -> (Waker, mpsc::Receiver<()>) {
        let (woken, wakes) = mpsc::channel();
        let waker = Waker::from(Arc::new(Reporting(std::sync::Mutex::new(Some(woken)))));
        (waker, wakes)
    }
}

impl Wake for Reporting {
    fn wake(self: Arc<Self>) {
        let woken = self.0.lock().unwrap().take();
        if let Some(woken) = woken {
            let _ = woken.send(());
        }
    }
}

type Wait = Pin<Box<dyn Future<Output = TaskState> + Send>>;

fn wait_future(recorder: &Recorder, id: u64) -> Wait {
    let recorder = recorder.clone();
    Box::pin(async move { recorder.wait(&id).await })
}

/// Polls `wait` once with `waker`, on a thread of its own: a `wait` that
/// spins instead of sleeping would never return, so the poll is bounded too.
fn poll_apart(id: u64, mut wait: Wait, waker: Waker) -> (Wait, Poll<TaskState>) {
    let (done, polled) = mpsc::channel();
    std::thread::spawn(move || {
        let poll = wait.as_mut().poll(&mut Context::from_waker(&waker));
        let _ = done.send((wait, poll));
    });
    polled.recv_timeout(BOUND).unwrap_or_else(|_| {
        panic!(
            "a poll of wait on id {id} still running after {} s: it spins instead of sleeping",
            BOUND.as_secs()
        )
    })
}

fn multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap()
}

#[test]
fn a_wait_sleeps_then_wakes_the_waker_of_its_latest_poll() {
    let runtime = multi_thread();
    let recorder = Recorder::new();
    let (release, task) = gated();
    runtime.block_on(recorder.launch(9, task)).accepted();
    let (first, _) = Reporting::pair();
    let (wait, poll) = poll_apart(9, wait_future(&recorder, 9), first);
    assert!(poll.is_pending(), "wait on a Working id returned {poll:?}");
    // The waiting task moved to another waker, as a task moved between
    // workers or a `select!` arm re-polled from elsewhere does.
    let (latest, woken) = Reporting::pair();
    let (wait, poll) = poll_apart(9, wait, latest.clone());
    assert!(poll.is_pending(), "wait on a Working id returned {poll:?}");
    release.send(()).unwrap();
    woken.recv_timeout(BOUND).unwrap_or_else(|_| {
        panic!(
            "id 9 finished but its waiter's latest waker was not woken within {} s",
            BOUND.as_secs()
        )
    });
    let (_, poll) = poll_apart(9, wait, latest);
    assert_eq!(poll, Poll::Ready(TaskState::Success));
}

#[test]
fn refused_operations_on_a_working_id_wake_no_waiter() {
    let runtime = multi_thread();
    let recorder = Recorder::new();
    let (release, task) = gated();
    runtime.block_on(recorder.launch(3, task)).accepted();
    let (waker, woken) = Reporting::pair();
    let (wait, poll) = poll_apart(3, wait_future(&recorder, 3), waker.clone());
    assert!(poll.is_pending());
    // A refused launch or revoke leaves the id `Working`; the signal is
    // fired, synchronously inside the call, only when the id leaves it.
    runtime.block_on(async {
        assert!(matches!(
            recorder.launch(3, ok()).await,
            Err((TaskState::Working, _))
        ));
        assert!(matches!(
            recorder.revoke_task_block(3, ok()).await,
            Err(RevokeFailReason::NotSuccess(_))
        ));
    });
    assert_eq!(
        woken.try_recv(),
        Err(mpsc::TryRecvError::Empty),
        "a refused operation woke the waiter of id 3"
    );
    drop(release);
    woken.recv_timeout(BOUND).unwrap_or_else(|_| {
        panic!(
            "id 3 failed but its waiter was not woken within {} s",
            BOUND.as_secs()
        )
    });
    let (_, poll) = poll_apart(3, wait, waker);
    assert_eq!(poll, Poll::Ready(TaskState::Failed));
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
        recorder
            .launch_block(1, err())
            .await
            .accepted()
            .unwrap_err();
        recorder.launch(2, err()).await.accepted();
        recorder
            .launch(3, async {
                if true {
                    panic!("task panicked on purpose");
                }
                Ok::<(), ()>(())
            })
            .await
            .accepted();
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
