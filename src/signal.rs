//! A one-shot broadcast latch: the notification primitive behind
//! [`wait`](crate::AsyncTasksRecorder::wait).
//!
//! A `Signal` starts unfired and fires once. Firing wakes every waker
//! registered before it; a [`Fired`] future polled after it is ready at once.
//! Because the latch never resets, a waiter that obtained the signal before
//! the firing can never miss it, whatever the order of the two threads' steps.
//! The table hands out a `Working` id's signal under that id's entry lock
//! and takes it back under the same lock when the id leaves `Working`
//! (`src/table.rs`), which is what makes `wait` free of lost wake-ups
//! (proofs/P7-wait-no-lost-wakeup.md).
//!
//! # Bounded by live waiters
//! Each pending [`Fired`] owns one slot of the latch's waker list; dropping
//! it before the firing empties the slot and puts it on a free list, which
//! the next registration reuses. So the list is as long as the largest number
//! of waiters pending at once, however many waits were started and cancelled
//! (a `select!` loop or a `timeout` around `wait` cancels one per tick).
//!
//! # Foreign code
//! Wakers are foreign code. [`Signal::fire`] wakes each one under
//! `catch_unwind`, so a waker that panics cannot keep the others asleep, and
//! hands the first panic back to its caller. Cloning or dropping a waker can
//! run under the latch's lock; the lock ignores poisoning, and the latch is
//! consistent at every point where such code runs.
//!
//! Built only from the shim's `Mutex`, so loom checks it with the rest.

use crate::sync::{Arc, Mutex, lock};
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// A one-shot broadcast latch.
#[derive(Debug, Default)]
pub struct Signal {
    inner: Mutex<Latch>,
}

#[derive(Debug, Default)]
struct Latch {
    fired: bool,
    /// One slot per pending [`Fired`] that registered; `None` once its
    /// future was dropped, until a new registration reuses it.
    wakers: Vec<Option<Waker>>,
    /// The empty slots of `wakers`.
    free: Vec<usize>,
}

impl Signal {
    /// Fires the latch and wakes every registered waiter. Idempotent.
    ///
    /// Every waker is woken even if some panic; the first panic's payload is
    /// returned, for the caller to resume once it is safe to.
    #[must_use = "a waker's panic is returned, not raised"]
    pub fn fire(&self) -> std::thread::Result<()> {
        let wakers = {
            let mut latch = lock(&self.inner);
            latch.fired = true;
            latch.free = Vec::new();
            std::mem::take(&mut latch.wakers)
        };
        // Wake outside the lock: a waker may run arbitrary code.
        let mut first_panic = Ok(());
        for waker in wakers.into_iter().flatten() {
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| waker.wake())) {
                if first_panic.is_ok() {
                    first_panic = Err(panic);
                }
            }
        }
        first_panic
    }

    /// How many wakers are registered and not yet woken or dropped.
    #[doc(hidden)]
    pub fn waiters(&self) -> usize {
        let latch = lock(&self.inner);
        latch.wakers.len() - latch.free.len()
    }

    /// A future that is ready once `signal` has fired.
    pub fn fired(signal: Arc<Self>) -> Fired {
        Fired { signal, slot: None }
    }
}

/// Ready once its [`Signal`] has fired. Dropping it before then removes its
/// waker from the signal.
#[derive(Debug)]
pub struct Fired {
    signal: Arc<Signal>,
    /// This future's slot in the latch's waker list while it is registered
    /// and the latch has not fired.
    slot: Option<usize>,
}

impl Future for Fired {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let mut latch = lock(&this.signal.inner);
        if latch.fired {
            // `fire` took the list: the slot is gone.
            this.slot = None;
            return Poll::Ready(());
        }
        match this.slot {
            // A re-poll may come from another task: keep only the newest waker.
            Some(slot) => match &mut latch.wakers[slot] {
                Some(waker) if waker.will_wake(cx.waker()) => {}
                registered => *registered = Some(cx.waker().clone()),
            },
            None => {
                let waker = Some(cx.waker().clone());
                let slot = match latch.free.pop() {
                    Some(slot) => {
                        latch.wakers[slot] = waker;
                        slot
                    }
                    None => {
                        latch.wakers.push(waker);
                        latch.wakers.len() - 1
                    }
                };
                this.slot = Some(slot);
            }
        }
        Poll::Pending
    }
}

impl Drop for Fired {
    /// Gives the slot back, unless the latch has fired (then `fire` took it).
    fn drop(&mut self) {
        let Some(slot) = self.slot.take() else {
            return;
        };
        let waker = {
            let mut latch = lock(&self.signal.inner);
            if latch.fired {
                return;
            }
            latch.free.push(slot);
            latch.wakers[slot].take()
        };
        // Dropped outside the lock: a waker's drop is foreign code.
        drop(waker);
    }
}
