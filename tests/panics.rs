//! Foreign code that panics inside the recorder: a key whose `Hash` panics
//! once while its attempt finishes, a key whose `Clone` panics, and a task
//! that panics while its finish panics too. The id never stays `Working`
//! when a retry can settle it, and the process never aborts.

use async_tasks_recorder::{AsyncTasksRecorder, TaskState};
use async_tasks_recorder_harness::bounded::{WATCHDOG, Watchdog};
use std::hash::{Hash, Hasher};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::pin;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// Panics on the n-th call from when it is armed with n; 0 is disarmed.
#[derive(Default)]
struct Countdown(AtomicUsize);

impl Countdown {
    fn arm(&self, calls: usize) {
        self.0.store(calls, Ordering::SeqCst);
    }

    /// Panics on every call until disarmed.
    fn arm_always(&self) {
        self.0.store(usize::MAX, Ordering::SeqCst);
    }

    fn disarm(&self) {
        self.0.store(0, Ordering::SeqCst);
    }

    fn tick(&self, what: &str) {
        let left = self.0.load(Ordering::SeqCst);
        if left == usize::MAX {
            panic!("{what} panicked on purpose, again");
        }
        if left > 0 {
            self.0.store(left - 1, Ordering::SeqCst);
            if left == 1 {
                panic!("{what} panicked on purpose");
            }
        }
    }
}

/// Traps shared by every clone of a [`Key`].
#[derive(Default)]
struct Traps {
    hash: Countdown,
    clone: Countdown,
}

/// A key whose `Hash` or `Clone` panics when its trap is armed.
struct Key {
    id: u64,
    traps: Arc<Traps>,
}

impl Key {
    fn new(id: u64) -> Self {
        Key {
            id,
            traps: Arc::default(),
        }
    }
}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.traps.hash.tick("Hash");
        self.id.hash(state);
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for Key {}

impl Clone for Key {
    fn clone(&self) -> Self {
        self.traps.clone.tick("Clone");
        Key {
            id: self.id,
            traps: self.traps.clone(),
        }
    }
}

type Recorder = AsyncTasksRecorder<Key>;

/// The text of a panic payload.
fn message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|text| text.to_string()))
        .unwrap_or_default()
}

/// The payload of a call that must have panicked.
fn expect_panic<T>(result: std::thread::Result<T>, what: &str) -> Box<dyn std::any::Any + Send> {
    match result {
        Ok(_) => panic!("{what}: no panic"),
        Err(payload) => payload,
    }
}

/// Polls `future` to completion on this thread, with no runtime, failing
/// the test after `bound` polls: every future here is ready within a few.
fn run<F: std::future::Future>(future: F, bound: usize, what: &str) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..bound {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
    panic!("{what}: not ready after {bound} polls")
}

/// A `launch_block` on `key` whose task ends with `output` after arming the
/// key's `Hash` to panic at the `nth` hash of the finish; a waiter, polled
/// once, sleeps on the id meanwhile if `waited`. The finish retries, so the
/// id is settled and the waiter woken; then the `Hash` panic reaches the
/// caller of `launch_block`.
fn hash_panics_in_the_finish(nth: usize, output: Result<(), ()>, waited: bool) {
    let recorder = Recorder::new();
    let key = Key::new(nth as u64);
    let traps = key.traps.clone();
    let waiter_recorder = recorder.clone();
    let waiter_key = Key {
        id: key.id,
        traps: Arc::default(),
    };
    let mut waiter = Box::pin(async move { waiter_recorder.wait(&waiter_key).await });
    let launched = catch_unwind(AssertUnwindSafe(|| {
        run(
            recorder.launch_block(key, async {
                if waited {
                    let noop = &mut Context::from_waker(Waker::noop());
                    assert!(waiter.as_mut().poll(noop).is_pending());
                }
                traps.hash.arm(nth);
                output
            }),
            4,
            "launch_block",
        )
    }));
    let what =
        format!("Hash panicking at call {nth} of the finish of {output:?}, waited: {waited}");
    let panic = expect_panic(launched, &what);
    assert_eq!(message(&*panic), "Hash panicked on purpose", "{what}");
    let expected = if output.is_ok() {
        TaskState::Success
    } else {
        TaskState::Failed
    };
    let probe = Key::new(nth as u64);
    assert_eq!(
        recorder.query_task_state_sync(&probe),
        expected,
        "{what}: the id's state"
    );
    if waited {
        let noop = &mut Context::from_waker(Waker::noop());
        assert_eq!(
            waiter.as_mut().poll(noop),
            Poll::Ready(expected),
            "{what}: the waiter"
        );
    }
    let relaunch = run(
        recorder.launch_block(probe, async { Ok::<_, ()>(()) }),
        4,
        "relaunch",
    );
    match expected {
        TaskState::Success => assert!(
            matches!(relaunch, Err((TaskState::Success, _))),
            "{what}: a relaunch of the succeeded id was not refused with Success"
        ),
        _ => assert!(
            matches!(relaunch, Ok(Ok(()))),
            "{what}: a relaunch of the failed id was refused"
        ),
    }
}

#[test]
fn a_key_whose_hash_panics_once_in_the_finish_still_settles() {
    // A spinning poll starves every timeout: the watchdog ends the run.
    let _watchdog = Watchdog::arm(WATCHDOG, "a_key_whose_hash_panics_once_in_the_finish_still_settles did not end within the watchdog's bound".into());
    for output in [Ok(()), Err(())] {
        hash_panics_in_the_finish(1, output, false);
        // Call 1 is the phase map's; call 2 is the waiter map's, inside the
        // phase entry's section.
        hash_panics_in_the_finish(1, output, true);
        hash_panics_in_the_finish(2, output, true);
    }
}

#[test]
fn a_key_whose_hash_panics_in_every_attempt_leaves_the_id_working() {
    // A spinning poll starves every timeout: the watchdog ends the run.
    let _watchdog = Watchdog::arm(WATCHDOG, "a_key_whose_hash_panics_in_every_attempt_leaves_the_id_working did not end within the watchdog's bound".into());
    let recorder = Recorder::new();
    let key = Key::new(1);
    let traps = key.traps.clone();
    let launched = catch_unwind(AssertUnwindSafe(|| {
        run(
            recorder.launch_block(key, async {
                traps.hash.arm_always();
                Ok::<_, ()>(())
            }),
            4,
            "launch_block",
        )
    }));
    traps.hash.disarm();
    let panic = expect_panic(launched, "the caller saw no panic");
    assert_eq!(message(&*panic), "Hash panicked on purpose, again");
    // Outside the keys' contract, the documented outcome: the id is wedged.
    assert_eq!(
        recorder.query_task_state_sync(&Key::new(1)),
        TaskState::Working
    );
}

#[test]
fn a_key_whose_clone_panics_changes_nothing() {
    // A spinning poll starves every timeout: the watchdog ends the run.
    let _watchdog = Watchdog::arm(
        WATCHDOG,
        "a_key_whose_clone_panics_changes_nothing did not end within the watchdog's bound".into(),
    );
    let recorder = Recorder::new();
    let key = Key::new(1);
    let traps = key.traps.clone();
    // `launch` clones the key before anything is recorded.
    traps.clone.arm(1);
    let launched = catch_unwind(AssertUnwindSafe(|| {
        run(
            recorder.launch_block(key.clone_unarmed(), async { Ok::<_, ()>(()) }),
            4,
            "launch",
        )
    }));
    assert_eq!(
        message(&*expect_panic(launched, "launch_block cloned the key")),
        "Clone panicked on purpose"
    );
    assert_eq!(recorder.query_task_state_sync(&key), TaskState::NotFound);

    // `wait` clones the key inside the id's section; the id stays as it was.
    let waiter = recorder.clone();
    let probe = key.clone_unarmed();
    let launched = run(
        recorder.launch_block(key.clone_unarmed(), async {
            traps.clone.arm(1);
            let waited = catch_unwind(AssertUnwindSafe(|| {
                let noop = &mut Context::from_waker(Waker::noop());
                let _ = pin!(waiter.wait(&probe)).poll(noop);
            }));
            assert_eq!(
                message(&*expect_panic(waited, "wait cloned the key")),
                "Clone panicked on purpose"
            );
            assert_eq!(waiter.query_task_state_sync(&probe), TaskState::Working);
            Ok::<_, ()>(())
        }),
        4,
        "launch_block",
    );
    assert!(
        matches!(launched, Ok(Ok(()))),
        "the launch of id 1 was refused"
    );
    assert_eq!(recorder.query_task_state_sync(&key), TaskState::Success);
}

impl Key {
    /// A clone that does not tick the `Clone` trap.
    fn clone_unarmed(&self) -> Key {
        Key {
            id: self.id,
            traps: self.traps.clone(),
        }
    }
}

/// Set in the child process of
/// [`a_task_panicking_while_its_finish_panics_does_not_abort`].
const CHILD: &str = "ASYNC_TASKS_RECORDER_PANIC_CHILD";

/// What the child prints once the scenario is over.
const SURVIVED: &str = "the finish path survived a double panic";

/// In the child: a task that panics after arming its key's `Hash`, so the
/// drop guard runs during the unwind and its first attempt panics too. A
/// panic escaping the guard there would abort the process.
fn double_panic_scenario() {
    let recorder = Recorder::new();
    let key = Key::new(1);
    let traps = key.traps.clone();
    let launched = catch_unwind(AssertUnwindSafe(|| {
        run(
            recorder.launch_block(key, async {
                traps.hash.arm(1);
                if true {
                    panic!("task panicked on purpose");
                }
                Ok::<(), ()>(())
            }),
            4,
            "launch_block",
        )
    }));
    let panic = expect_panic(launched, "the task panicked");
    assert_eq!(message(&*panic), "task panicked on purpose");
    assert_eq!(
        recorder.query_task_state_sync(&Key::new(1)),
        TaskState::Failed
    );
    println!("{SURVIVED}");
}

#[test]
fn a_task_panicking_while_its_finish_panics_does_not_abort() {
    // A spinning poll starves every timeout: the watchdog ends the run.
    let _watchdog = Watchdog::arm(WATCHDOG, "a_task_panicking_while_its_finish_panics_does_not_abort did not end within the watchdog's bound".into());
    if std::env::var_os(CHILD).is_some() {
        double_panic_scenario();
        return;
    }
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_task_panicking_while_its_finish_panics_does_not_abort",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the double-panic child did not end within 30 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let output = child.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert!(
        status.success() && stdout.contains(SURVIVED),
        "the double-panic child ended with {status}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
}
