//! Waiters that misbehave or are cancelled: cancelled waits give their wakers
//! back, a re-polled wait keeps only its newest waker, a waker that panics
//! does not keep the others asleep, and a task that waits on its own id
//! stays `Working` until it is cancelled. Every wait here is bounded.

use async_tasks_recorder::signal::Signal;
use async_tasks_recorder::{AsyncTasksRecorder, TaskState};
use std::future::Future;
use std::pin::pin;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;
use tokio::sync::oneshot;

type Recorder = AsyncTasksRecorder<u64>;

/// How long a test waits for a wake-up that must come.
const PATIENCE: Duration = Duration::from_secs(10);

/// A task that ends `Ok` when `release` is sent, `Err` when it is dropped.
fn gated() -> (
    oneshot::Sender<()>,
    impl Future<Output = Result<(), ()>> + Send + 'static,
) {
    let (release, gate) = oneshot::channel::<()>();
    (release, async move { gate.await.map_err(|_| ()) })
}

/// A waker that reports its name on a channel when woken.
struct Named {
    name: usize,
    woken: Mutex<mpsc::Sender<usize>>,
}

impl Wake for Named {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // The receiver may be gone once the test has what it needs.
        let _ = self.woken.lock().unwrap().send(self.name);
    }
}

fn named(name: usize, woken: &mpsc::Sender<usize>) -> Waker {
    Waker::from(Arc::new(Named {
        name,
        woken: Mutex::new(woken.clone()),
    }))
}

/// A waker whose `wake` panics.
struct Panicking;

impl Wake for Panicking {
    fn wake(self: Arc<Self>) {
        panic!("waker panicked on purpose");
    }
}

/// Receives `count` wake-ups, each within [`PATIENCE`], naming what is missing.
fn expect_woken(woken: &mpsc::Receiver<usize>, count: usize, what: &str) -> Vec<usize> {
    (0..count)
        .map(|n| {
            woken.recv_timeout(PATIENCE).unwrap_or_else(|_| {
                panic!("{what}: only {n} of {count} waiters woke within {PATIENCE:?}")
            })
        })
        .collect()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap()
}

/// Launches a gated task under `id` on `runtime`.
fn launch_gated(
    runtime: &tokio::runtime::Runtime,
    recorder: &Recorder,
    id: u64,
) -> oneshot::Sender<()> {
    let (release, task) = gated();
    runtime.block_on(async {
        assert!(recorder.launch(id, task).await.is_ok(), "launch of id {id}");
    });
    release
}

// ---------------------------------------------------------------------------
// Cancelled waits
// ---------------------------------------------------------------------------

#[test]
fn cancelled_waits_release_their_wakers() {
    let runtime = runtime();
    let recorder = Recorder::new();
    let release = launch_gated(&runtime, &recorder, 1);
    let (woken_tx, woken) = mpsc::channel();
    let counted = Arc::new(Named {
        name: 0,
        woken: Mutex::new(woken_tx),
    });
    let waker = Waker::from(counted.clone());
    let held = || Arc::strong_count(&counted) - 2; // ours, and `waker`
    for _ in 0..100_000 {
        let mut wait = pin!(recorder.wait(&1));
        assert!(
            wait.as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_pending(),
            "id 1 is Working: its wait must be pending"
        );
    }
    assert_eq!(
        held(),
        0,
        "after 10^5 cancelled waits on the Working id 1, the recorder holds this many wakers"
    );

    // A pending wait holds exactly one, however often it is polled.
    let mut pending = Box::pin(recorder.wait(&1));
    for _ in 0..3 {
        assert!(
            pending
                .as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_pending()
        );
    }
    assert_eq!(held(), 1, "one pending wait on id 1, wakers held");
    release.send(()).unwrap();
    assert_eq!(
        expect_woken(&woken, 1, "the pending wait on id 1"),
        [0],
        "the pending wait's waker"
    );
    assert_eq!(
        pending.as_mut().poll(&mut Context::from_waker(&waker)),
        Poll::Ready(TaskState::Success)
    );
    drop(pending);
    assert_eq!(held(), 0, "after id 1 finished, wakers held");
}

#[test]
fn a_dropped_fired_gives_its_slot_back() {
    let signal = Arc::new(Signal::default());
    let noop = &mut Context::from_waker(Waker::noop());
    let mut live = Box::pin(Signal::fired(signal.clone()));
    assert!(live.as_mut().poll(noop).is_pending());
    for _ in 0..100_000 {
        let mut cancelled = pin!(Signal::fired(signal.clone()));
        assert!(cancelled.as_mut().poll(noop).is_pending());
        assert_eq!(
            signal.waiters(),
            2,
            "one live waiter and the one being cancelled"
        );
    }
    assert_eq!(
        signal.waiters(),
        1,
        "after 10^5 cancelled waiters, one live one"
    );
    // A future dropped unpolled, or after the firing, changes nothing.
    drop(Signal::fired(signal.clone()));
    assert_eq!(signal.waiters(), 1);
    signal.fire().expect("no-op wakers do not panic");
    assert_eq!(signal.waiters(), 0);
    assert_eq!(live.as_mut().poll(noop), Poll::Ready(()));
    drop(live);
    assert_eq!(signal.waiters(), 0);
    let mut late = pin!(Signal::fired(signal));
    assert!(
        late.as_mut().poll(noop).is_ready(),
        "a wait after the firing"
    );
}

// ---------------------------------------------------------------------------
// A re-polled wait
// ---------------------------------------------------------------------------

#[test]
fn a_wait_re_polled_with_a_new_waker_is_woken_through_the_new_one() {
    let runtime = runtime();
    let recorder = Recorder::new();
    let release = launch_gated(&runtime, &recorder, 2);
    let (woken_tx, woken) = mpsc::channel();
    let (first, second) = (named(1, &woken_tx), named(2, &woken_tx));
    let mut wait = Box::pin(recorder.wait(&2));
    // The future moves from a task with waker 1 to a task with waker 2.
    assert!(
        wait.as_mut()
            .poll(&mut Context::from_waker(&first))
            .is_pending()
    );
    assert!(
        wait.as_mut()
            .poll(&mut Context::from_waker(&second))
            .is_pending()
    );
    release.send(()).unwrap();
    assert_eq!(
        expect_woken(&woken, 1, "the re-polled wait on id 2"),
        [2],
        "the finish of id 2 must wake the wait's newest waker"
    );
    assert_eq!(
        wait.as_mut().poll(&mut Context::from_waker(&second)),
        Poll::Ready(TaskState::Success)
    );
    assert!(
        woken.try_recv().is_err(),
        "the first waker of id 2's wait was replaced, yet it was woken too"
    );
}

// ---------------------------------------------------------------------------
// A waker that panics
// ---------------------------------------------------------------------------

/// Registers `count` waits on `id`, polled once each, the `panicking`-th with
/// a waker that panics and the others with wakers named by their index.
fn register_waiters(
    recorder: &Recorder,
    id: u64,
    count: usize,
    panicking: usize,
    woken: &mpsc::Sender<usize>,
) -> Vec<std::pin::Pin<Box<impl Future<Output = TaskState> + use<>>>> {
    (0..count)
        .map(|n| {
            let recorder = recorder.clone();
            let mut wait = Box::pin(async move { recorder.wait(&id).await });
            let waker = if n == panicking {
                Waker::from(Arc::new(Panicking))
            } else {
                named(n, woken)
            };
            assert!(
                wait.as_mut()
                    .poll(&mut Context::from_waker(&waker))
                    .is_pending()
            );
            wait
        })
        .collect()
}

#[test]
fn a_panicking_waker_does_not_keep_the_other_waiters_asleep() {
    let runtime = runtime();
    let recorder = Recorder::new();
    let release = launch_gated(&runtime, &recorder, 3);
    let (woken_tx, woken) = mpsc::channel();
    // The panicking waker sits in the middle of the list.
    let waits = register_waiters(&recorder, 3, 8, 3, &woken_tx);
    release.send(()).unwrap();
    let mut names = expect_woken(&woken, 7, "waiters on id 3 beside a panicking waker");
    names.sort_unstable();
    assert_eq!(names, [0, 1, 2, 4, 5, 6, 7]);
    let noop = &mut Context::from_waker(Waker::noop());
    for mut wait in waits {
        assert_eq!(wait.as_mut().poll(noop), Poll::Ready(TaskState::Success));
    }
    assert_eq!(recorder.query_task_state_sync(&3), TaskState::Success);
}

#[test]
fn a_panicking_waker_reaches_the_caller_of_launch_block_after_the_state_is_recorded() {
    let runtime = runtime();
    let recorder = Recorder::new();
    let (entered_tx, entered) = oneshot::channel();
    let (release, task) = gated();
    let caller = {
        let recorder = recorder.clone();
        runtime.spawn(async move {
            recorder
                .launch_block(4, async move {
                    entered_tx.send(()).unwrap();
                    task.await
                })
                .await
        })
    };
    runtime.block_on(entered).unwrap();
    let (woken_tx, woken) = mpsc::channel();
    let waits = register_waiters(&recorder, 4, 3, 0, &woken_tx);
    release.send(()).unwrap();
    let joined = runtime.block_on(async { tokio::time::timeout(PATIENCE, caller).await });
    let Err(failed) = joined.expect("the launch_block on id 4 did not return") else {
        panic!("a waker panicked in the finish of id 4: the caller must see it");
    };
    let panic = failed.into_panic();
    assert_eq!(
        panic.downcast_ref::<&str>(),
        Some(&"waker panicked on purpose")
    );
    let mut names = expect_woken(&woken, 2, "waiters on id 4 beside a panicking waker");
    names.sort_unstable();
    assert_eq!(names, [1, 2]);
    assert_eq!(
        recorder.query_task_state_sync(&4),
        TaskState::Success,
        "the task's Ok is recorded before the waker's panic continues"
    );
    drop(waits);
}

// ---------------------------------------------------------------------------
// A task that waits on its own id
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_launch_block_waiting_on_its_own_id_stays_working_until_cancelled() {
    let recorder = Recorder::new();
    let (entered_tx, entered) = oneshot::channel();
    let mut caller = {
        let recorder = recorder.clone();
        tokio::spawn(async move {
            let inner = recorder.clone();
            recorder
                .launch_block(5, async move {
                    entered_tx.send(()).unwrap();
                    Ok::<_, ()>(inner.wait(&5).await)
                })
                .await
                .is_ok()
        })
    };
    entered.await.unwrap();
    let bounded = tokio::time::timeout(Duration::from_millis(200), &mut caller).await;
    assert!(
        bounded.is_err(),
        "a launch_block waiting on its own id 5 returned: {bounded:?}"
    );
    assert_eq!(recorder.query_task_state(&5).await, TaskState::Working);
    caller.abort();
    assert!(caller.await.unwrap_err().is_cancelled());
    assert_eq!(recorder.query_task_state(&5).await, TaskState::Failed);
    let waited = tokio::time::timeout(PATIENCE, recorder.wait(&5)).await;
    assert_eq!(
        waited,
        Ok(TaskState::Failed),
        "a wait on id 5 after the cancel"
    );
}

#[test]
fn a_spawned_task_waiting_on_its_own_id_stays_working_until_its_runtime_shuts_down() {
    let recorder = Recorder::new();
    let runtime = runtime();
    let (entered_tx, entered) = oneshot::channel();
    runtime.block_on(async {
        let inner = recorder.clone();
        let task = async move {
            entered_tx.send(()).unwrap();
            Ok::<_, ()>(inner.wait(&6).await)
        };
        assert!(recorder.launch(6, task).await.is_ok(), "launch of id 6");
        entered.await.unwrap();
        let bounded = tokio::time::timeout(Duration::from_millis(200), recorder.wait(&6)).await;
        assert!(
            bounded.is_err(),
            "a task waiting on its own id 6 ended: {bounded:?}"
        );
    });
    assert_eq!(recorder.query_task_state_sync(&6), TaskState::Working);
    drop(runtime);
    assert_eq!(recorder.query_task_state_sync(&6), TaskState::Failed);
}
