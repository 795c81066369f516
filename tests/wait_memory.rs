//! Memory held by cancelled waits, measured with a counting global allocator.
//!
//! A `wait` that is polled once (so it registers its waker) and then dropped
//! while the id is still `Working` must give its memory back: the recorder's
//! memory is bounded by the waiters alive now, not by every waiter there
//! ever was. One test in this binary, so that no other test allocates while
//! it measures.

use async_tasks_recorder::{AsyncTasksRecorder, TaskState};
use std::alloc::{GlobalAlloc, Layout, System};
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::task::{Context, Waker};
use std::time::Duration;

/// Bytes allocated and not yet freed, by every thread of this process.
static LIVE: AtomicIsize = AtomicIsize::new(0);

struct Counting;

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            LIVE.fetch_add(
                new_size as isize - layout.size() as isize,
                Ordering::Relaxed,
            );
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The growth of live bytes over `run`.
fn growth(run: impl FnOnce()) -> isize {
    let before = LIVE.load(Ordering::SeqCst);
    run();
    LIVE.load(Ordering::SeqCst) - before
}

/// The bound every scenario must stay under: a few slots of the id's waker
/// list and the allocator's own noise, against the megabytes of a list that
/// keeps every waker.
const BOUND: isize = 64 * 1024;

/// Polls a wait on id 1 once inside a `select!` whose other branch is ready,
/// so the wait registers the current task's waker and is dropped. True if the
/// wait was the branch not taken.
async fn poll_wait_once(recorder: &AsyncTasksRecorder<u64>) -> bool {
    tokio::select! {
        biased;
        _ = recorder.wait(&1) => false,
        () = std::future::ready(()) => true,
    }
}

#[test]
fn cancelled_waits_keep_memory_bounded_by_live_waiters() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    let recorder: AsyncTasksRecorder<u64> = AsyncTasksRecorder::new();
    let (release, gate) = tokio::sync::oneshot::channel::<()>();
    runtime.block_on(async {
        let task = async move { gate.await.map_err(|_| ()) };
        assert!(recorder.launch(1, task).await.is_ok(), "launch of id 1");
    });
    // Warm up: the id's signal and the first slot of its waker list.
    let _ = pin!(recorder.wait(&1)).poll(&mut Context::from_waker(Waker::noop()));

    // 10^6 waits, each polled once with a no-op waker and dropped.
    let polled_once = growth(|| {
        for _ in 0..1_000_000 {
            let mut wait = pin!(recorder.wait(&1));
            assert!(
                wait.as_mut()
                    .poll(&mut Context::from_waker(Waker::noop()))
                    .is_pending(),
                "id 1 is Working: its wait must be pending"
            );
        }
    });

    // 10^5 `select!`s that poll a wait first, with the runtime's waker of
    // the task, and take a ready branch, dropping the wait.
    let selected = growth(|| {
        runtime.block_on(async {
            for _ in 0..100_000 {
                assert!(
                    poll_wait_once(&recorder).await,
                    "id 1 is Working: its wait cannot end"
                );
            }
        })
    });

    // 10^5 short-lived tasks that each cancel one wait: a kept waker would
    // keep its finished task's allocation alive.
    let short_tasks = growth(|| {
        runtime.block_on(async {
            for _ in 0..100 {
                let tasks: Vec<_> = (0..1_000)
                    .map(|_| {
                        let recorder = recorder.clone();
                        tokio::spawn(async move { poll_wait_once(&recorder).await })
                    })
                    .collect();
                for task in tasks {
                    assert!(task.await.unwrap(), "id 1 is Working: its wait cannot end");
                }
            }
        })
    });

    println!(
        "live-byte growth: 10^6 waits polled once and dropped: {polled_once} B; \
         10^5 waits dropped by a select!: {selected} B; \
         10^5 short-lived tasks each cancelling a wait: {short_tasks} B"
    );
    for (scenario, bytes) in [
        ("10^6 waits polled once and dropped", polled_once),
        ("10^5 waits dropped by a select!", selected),
        ("10^5 short-lived tasks each cancelling a wait", short_tasks),
    ] {
        assert!(
            bytes < BOUND,
            "{scenario} on the Working id 1 grew live memory by {bytes} B (bound {BOUND} B)"
        );
    }

    // The id still finishes and its waiters still wake.
    release.send(()).unwrap();
    let woke = runtime
        .block_on(async { tokio::time::timeout(Duration::from_secs(10), recorder.wait(&1)).await });
    assert_eq!(
        woke,
        Ok(TaskState::Success),
        "a wait on id 1 after its task ended"
    );
}
