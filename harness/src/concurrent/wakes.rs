//! Wake-up bookkeeping of the observers of a concurrent run, from which the
//! run tells a waiter that is merely pending from one nothing will ever wake.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};

/// A future's wake-up bookkeeping: after quiescence, a `wait` that returned
/// `Pending` and was never woken since can never be woken again.
#[derive(Default)]
pub(super) struct Wakes {
    /// Woken since the last poll.
    woken: AtomicBool,
    /// Polled, returned `Pending`, not woken since.
    pub(super) asleep: AtomicBool,
    /// Inside a `wait` call.
    pub(super) waiting: AtomicBool,
    /// Polls so far.
    pub(super) polls: AtomicU64,
}

/// The waker a [`Tracked`] future is polled with: notes the wake in
/// [`Wakes`], then wakes the runtime's own waker.
struct Flag {
    wakes: Arc<Wakes>,
    waker: Waker,
}

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.wakes.woken.store(true, Ordering::SeqCst);
        self.wakes.asleep.store(false, Ordering::SeqCst);
        self.waker.wake_by_ref();
    }
}

/// Wraps a future to keep [`Wakes`] up to date.
pub(super) struct Tracked<F> {
    pub(super) future: Pin<Box<F>>,
    pub(super) wakes: Arc<Wakes>,
}

impl<F: Future> Future for Tracked<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let wakes = self.wakes.clone();
        wakes.polls.fetch_add(1, Ordering::SeqCst);
        wakes.woken.store(false, Ordering::SeqCst);
        wakes.asleep.store(false, Ordering::SeqCst);
        let waker = Waker::from(Arc::new(Flag {
            wakes: wakes.clone(),
            waker: cx.waker().clone(),
        }));
        let poll = self.future.as_mut().poll(&mut Context::from_waker(&waker));
        if poll.is_pending() && !wakes.woken.load(Ordering::SeqCst) {
            wakes.asleep.store(true, Ordering::SeqCst);
            // A wake between the load and the store above re-checks here.
            if wakes.woken.load(Ordering::SeqCst) {
                wakes.asleep.store(false, Ordering::SeqCst);
            }
        }
        poll
    }
}

/// Drops its observer count when the observer's future ends or is dropped,
/// always before the runtime stops counting the task as alive.
pub(super) struct Alive(pub(super) Arc<AtomicUsize>);

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}
