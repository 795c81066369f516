//! The helpers every test side shares: a lock that ignores poisoning
//! ([`lock`]), one poll with a no-op waker ([`poll_once`]), [`CatchUnwind`],
//! tasks that panic on purpose without printing ([`task_panic`]), case counts
//! from the environment ([`cases`], [`env_or`]) and a small seeded generator
//! ([`Xorshift`]).
//!
//! Nothing here needs proptest, so the module builds without the `checkers`
//! feature, for tools that must stay light.

use std::any::Any;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::str::FromStr;
use std::sync::{Mutex, MutexGuard, Once};
use std::task::{Context, Poll, Waker};

/// Cases per run: `PROPTEST_CASES`, or `quick` for a plain `cargo test`.
pub fn cases(quick: u32) -> u32 {
    env_or("PROPTEST_CASES", quick)
}

/// The value of the environment variable `var` parsed as a `T`, or
/// `default` when it is unset or does not parse.
pub fn env_or<T: FromStr>(var: &str, default: T) -> T {
    std::env::var(var)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// xorshift64*: small, seeded, reproducible. A run that fails names its
/// seed, and the same seed replays the same choices.
#[derive(Clone, Debug)]
pub struct Xorshift(u64);

impl Xorshift {
    /// A generator at `seed`, which must not be 0 (xorshift stays at 0).
    pub fn new(seed: u64) -> Self {
        debug_assert_ne!(seed, 0, "xorshift never leaves a zero state");
        Xorshift(seed)
    }

    /// The next number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

/// Locks a std mutex of the checkers, ignoring poisoning: a task that
/// panics on purpose must not hide a log or a report. (The library's own
/// locks go through `async_tasks_recorder::sync::lock`.)
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Polls `future` once, with a waker that does nothing.
pub fn poll_once<F: Future + ?Sized>(future: Pin<&mut F>) -> Poll<F::Output> {
    future.poll(&mut Context::from_waker(Waker::noop()))
}

/// The text of a panic payload.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else if payload.is::<TaskPanic>() {
        "a task panicked on purpose".to_owned()
    } else {
        "<non-text panic payload>".to_owned()
    }
}

/// A future's output, or the panic it raised.
pub struct CatchUnwind<F>(Pin<Box<F>>);

impl<F: Future> CatchUnwind<F> {
    pub fn new(future: F) -> Self {
        CatchUnwind(Box::pin(future))
    }
}

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, Box<dyn Any + Send>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match catch_unwind(AssertUnwindSafe(|| self.0.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Err(panic) => Poll::Ready(Err(panic)),
        }
    }
}

/// The payload of the panics the tasks raise on purpose.
#[derive(Debug)]
pub struct TaskPanic;

/// Raises a [`TaskPanic`] without printing it (see [`quiet_task_panics`]).
pub fn task_panic() -> ! {
    quiet_task_panics();
    std::panic::panic_any(TaskPanic)
}

thread_local! {
    static QUIET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Installs, once, a panic hook that keeps [`TaskPanic`]s, and every panic
/// of a thread inside [`quietly`], off stderr, and hands every other panic
/// to the previous hook.
pub fn quiet_task_panics() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let quiet = info.payload().is::<TaskPanic>() || QUIET.get();
            if !quiet {
                previous(info);
            }
        }));
    });
}

/// Runs `f` with this thread's panics kept off stderr: a bite test expects
/// the failures its runner catches while shrinking.
pub fn quietly<T>(f: impl FnOnce() -> T) -> T {
    /// Restores the flag even if `f` panics.
    struct Loud;
    impl Drop for Loud {
        fn drop(&mut self) {
            QUIET.set(false);
        }
    }
    quiet_task_panics();
    QUIET.set(true);
    let _loud = Loud;
    f()
}
