//! `wait`: it returns at once unless the id is `Working`, sleeps on the
//! waker of its latest poll, and wakes with the final state; cancelled
//! waiters and refused operations disturb no other waiter.

use super::{Accepted, Recorder, err, gated, multi_thread, ok};
use async_tasks_recorder::{RevokeFailReason, TaskState};
use async_tasks_recorder_harness::bounded::{BOUND, within};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, mpsc};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;
use tokio::runtime::Runtime;
use tokio::sync::oneshot;

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

/// Launches a gated task on `id` in `runtime` and polls a wait on the
/// `Working` id once with `waker` (apart, as [`poll_apart`]), which must
/// leave it pending: the start of the waker tests. Returns the task's
/// release and the pending wait.
fn pending_wait(
    runtime: &Runtime,
    recorder: &Recorder,
    id: u64,
    waker: Waker,
) -> (oneshot::Sender<()>, Wait) {
    let (release, task) = gated();
    runtime.block_on(recorder.launch(id, task)).accepted();
    let (wait, poll) = poll_apart(id, wait_future(recorder, id), waker);
    assert!(poll.is_pending(), "wait on a Working id returned {poll:?}");
    (release, wait)
}

/// Requires `woken` to report its waker's wake within [`BOUND`] (`what`
/// names the waiter in the failure), then polls the waiter's `wait` on `id`
/// once more with `waker` (apart, as [`poll_apart`]): it must be ready with
/// `settled`.
fn woken_then_ready(
    woken: &mpsc::Receiver<()>,
    what: &str,
    id: u64,
    wait: Wait,
    waker: Waker,
    settled: TaskState,
) {
    woken
        .recv_timeout(BOUND)
        .unwrap_or_else(|_| panic!("{what} was not woken within {} s", BOUND.as_secs()));
    let (_, poll) = poll_apart(id, wait, waker);
    assert_eq!(poll, Poll::Ready(settled));
}

#[test]
fn a_wait_sleeps_then_wakes_the_waker_of_its_latest_poll() {
    let runtime = multi_thread();
    let recorder = Recorder::new();
    let (first, _) = Reporting::pair();
    let (release, wait) = pending_wait(&runtime, &recorder, 9, first);
    // The waiting task moved to another waker, as a task moved between
    // workers or a `select!` arm re-polled from elsewhere does.
    let (latest, woken) = Reporting::pair();
    let (wait, poll) = poll_apart(9, wait, latest.clone());
    assert!(poll.is_pending(), "wait on a Working id returned {poll:?}");
    release.send(()).unwrap();
    woken_then_ready(
        &woken,
        "id 9 finished but its waiter's latest waker",
        9,
        wait,
        latest,
        TaskState::Success,
    );
}

#[test]
fn refused_operations_on_a_working_id_wake_no_waiter() {
    let runtime = multi_thread();
    let recorder = Recorder::new();
    let (waker, woken) = Reporting::pair();
    let (release, wait) = pending_wait(&runtime, &recorder, 3, waker.clone());
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
    woken_then_ready(
        &woken,
        "id 3 failed but its waiter",
        3,
        wait,
        waker,
        TaskState::Failed,
    );
}
