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
//! Built only from the shim's `Mutex`, so loom checks it with the rest.

use crate::sync::{Arc, Mutex, lock};
use std::future::Future;
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
    wakers: Vec<Waker>,
}

impl Signal {
    /// Fires the latch and wakes every registered waiter. Idempotent.
    pub fn fire(&self) {
        let wakers = {
            let mut latch = lock(&self.inner);
            latch.fired = true;
            std::mem::take(&mut latch.wakers)
        };
        // Wake outside the lock: a waker may run arbitrary code.
        for waker in wakers {
            waker.wake();
        }
    }

    /// Whether the latch has fired.
    pub fn is_fired(&self) -> bool {
        lock(&self.inner).fired
    }

    /// A future that is ready once `signal` has fired.
    pub fn fired(signal: Arc<Self>) -> Fired {
        Fired { signal, slot: None }
    }
}

/// Ready once its [`Signal`] has fired.
#[derive(Debug)]
pub struct Fired {
    signal: Arc<Signal>,
    /// Where this future's waker sits in the latch, so a re-poll replaces it
    /// rather than growing the list.
    slot: Option<usize>,
}

impl Future for Fired {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let mut latch = lock(&this.signal.inner);
        if latch.fired {
            return Poll::Ready(());
        }
        match this.slot {
            Some(slot) => latch.wakers[slot].clone_from(cx.waker()),
            None => {
                this.slot = Some(latch.wakers.len());
                latch.wakers.push(cx.waker().clone());
            }
        }
        Poll::Pending
    }
}
