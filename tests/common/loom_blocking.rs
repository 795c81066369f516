//! Blocking inside a loom model so that a deadlock reaches the test as a
//! panic, instead of aborting the test process.
//!
//! loom reports a deadlock by panicking in the last thread to block, after it
//! has stopped the execution. Unwinding that thread drops what it holds, and
//! dropping a loom object then (a loom `Arc`'s reference count is a loom
//! operation) panics again inside the unwind, which aborts.
//! `loom::future::block_on` holds such an `Arc` itself. So the models block
//! with [`block_on`], whose waker is a std `Arc` around a `loom::sync::Notify`,
//! and a thread that may be the one to block keeps its loom handles in
//! [`Held`], which leaks its value when its thread unwinds.
#![allow(dead_code)]

use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

/// Drives `future` to completion on the current model thread, parking it on a
/// loom `Notify` while the future is pending. Explores spurious wake-ups as
/// `loom::future::block_on` does.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let parker = Arc::new(Parker(loom::sync::Notify::new()));
    let waker = Waker::from(parker.clone());
    let mut cx = Context::from_waker(&waker);
    let mut future = Held::new(Box::pin(future));
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        parker.0.wait();
    }
}

/// Wakes the one thread that blocks on it.
struct Parker(loom::sync::Notify);

impl Wake for Parker {
    fn wake(self: Arc<Self>) {
        self.0.notify();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.notify();
    }
}

/// A value that is dropped normally, but leaked if its thread unwinds.
pub struct Held<T>(Option<T>);

impl<T> Held<T> {
    pub fn new(value: T) -> Self {
        Held(Some(value))
    }
}

impl<T> Deref for Held<T> {
    type Target = T;

    fn deref(&self) -> &T {
        let Some(value) = &self.0 else {
            unreachable!("only `drop` empties a Held")
        };
        value
    }
}

impl<T> DerefMut for Held<T> {
    fn deref_mut(&mut self) -> &mut T {
        let Some(value) = &mut self.0 else {
            unreachable!("only `drop` empties a Held")
        };
        value
    }
}

impl<T> Drop for Held<T> {
    fn drop(&mut self) {
        let value = self.0.take();
        if std::thread::panicking() {
            std::mem::forget(value);
        }
    }
}
