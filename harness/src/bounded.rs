//! Bounded waits for tests: a wedged id or a lost wake-up fails a test within
//! seconds, with a message naming the id, instead of hanging the suite.
//!
//! Two layers, because a broken recorder can hang a test in two ways.
//! - A future that sleeps forever (nothing wakes it): [`within`] times it
//!   out on the runtime's timer and panics, which fails only that test.
//! - A future that never yields (a `wait` that spins): it starves its
//!   worker, and once every worker spins the timer is not driven either, so
//!   no timeout can fire. A [`Watchdog`] thread, outside the runtime, then
//!   aborts the process after a longer bound, having written why.

use std::fmt::Display;
use std::future::Future;
use std::io::Write;
use std::sync::mpsc;
use std::time::Duration;

/// How long a test waits for an id to leave `Working`.
pub const BOUND: Duration = Duration::from_secs(5);

/// How long before the watchdog gives up on the runtime's own timer.
pub const WATCHDOG: Duration = Duration::from_secs(10);

/// Awaits `future` for at most [`BOUND`]; panics naming `id` if it is still
/// pending, and aborts the process after [`WATCHDOG`] if `future` never
/// yields (the timeout cannot fire then).
pub async fn within<I: Display, F: Future>(id: I, future: F) -> F::Output {
    let what = format!("id {id} still Working after {} s", BOUND.as_secs());
    let _watchdog = Watchdog::arm(WATCHDOG, format!("{what}, and the runtime is starved"));
    match tokio::time::timeout(BOUND, future).await {
        Ok(output) => output,
        Err(_) => panic!("{what}"),
    }
}

/// Aborts the process unless dropped within its bound: the last resort
/// against code that spins and so starves every timer of its runtime.
///
/// The abort is the only way to stop a thread stuck in a loop that never
/// yields; the message goes straight to stderr, past the test harness's
/// output capture, which an abort would discard.
#[derive(Debug)]
pub struct Watchdog {
    /// Dropping it disarms the watchdog.
    _disarm: mpsc::Sender<()>,
}

impl Watchdog {
    /// Starts a watchdog that aborts with `message` after `bound`.
    pub fn arm(bound: Duration, message: String) -> Self {
        let (disarm, disarmed) = mpsc::channel::<()>();
        std::thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = disarmed.recv_timeout(bound) {
                let _ = writeln!(
                    std::io::stderr(),
                    "watchdog: {message} (after {} s); aborting",
                    bound.as_secs()
                );
                std::process::abort();
            }
        });
        Watchdog { _disarm: disarm }
    }
}
