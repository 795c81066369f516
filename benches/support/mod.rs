//! What every bench binary shares: the contestants behind one trait, the
//! cheap driver that runs their futures, the key distributions, and the
//! criterion settings (full or quick).
//!
//! Every contestant records the same states for the same calls, so the
//! workloads are written once, generically, and each contestant pays only
//! for its own bookkeeping.

#![allow(dead_code)]

/// Runs `$f::<C>(args)` for every contestant, in the order of the tables.
macro_rules! for_each_contestant {
    ($f:ident($($arg:expr),*)) => {
        $f::<$crate::support::Ours>($($arg),*);
        $f::<$crate::support::RawMap>($($arg),*);
        $f::<$crate::support::V2>($($arg),*);
        $f::<$crate::support::StateMap>($($arg),*);
        $f::<$crate::support::MutexMap>($($arg),*);
    };
}

pub mod contestants;
pub mod keys;

use criterion::Criterion;
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::Duration;

pub use bench_report::Mode;
pub use contestants::{Contestant, Launch, MutexMap, Ours, RawMap, StateMap, V2};

/// State codes shared by all contestants.
pub const NOT_FOUND: u8 = 0;
pub const WORKING: u8 = 1;
pub const SUCCESS: u8 = 2;
pub const FAILED: u8 = 3;
pub const REVOKING: u8 = 4;

/// `BENCH_QUICK=1` (any value but `0`) selects the smoke configuration.
pub fn quick() -> bool {
    Mode::from_env() == Mode::Quick
}

/// Criterion settings: short in quick mode, bounded so a full run of all
/// bench binaries stays under 20 minutes on 2 cores.
pub fn criterion() -> Criterion {
    write_mode();
    let base = Criterion::default();
    let tuned = if quick() {
        base.sample_size(10)
            .warm_up_time(Duration::from_millis(30))
            .measurement_time(Duration::from_millis(120))
            .nresamples(1_000)
            .without_plots()
    } else {
        base.sample_size(15)
            .warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_millis(1_200))
            .nresamples(10_000)
    };
    tuned.configure_from_args()
}

/// Leaves the mode in criterion's directory for the report.
fn write_mode() {
    let dir = bench_report::criterion_dir();
    if std::fs::create_dir_all(&dir).is_ok() {
        let _ = std::fs::write(dir.join(bench_report::MODE_FILE), Mode::from_env().as_str());
    }
}

/// Runs a future that is expected to be ready at once: one poll, so no
/// executor cost hides the map cost. A future that is not ready (a peer's
/// async map call meeting a locked bucket under contention) has registered
/// this thread's waker, and is polled again once woken.
///
/// The waker is real from the first poll: a future that registered a noop
/// waker on a lock's wait queue may never be woken, and re-polling does not
/// always retry.
pub fn drive<F: Future>(fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    THREAD_WAKER.with(|waker| {
        let mut cx = Context::from_waker(waker);
        loop {
            if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
                return out;
            }
            // The timeout only bounds a spurious miss; wake-ups unpark at once.
            thread::park_timeout(Duration::from_millis(1));
        }
    })
}

thread_local! {
    /// Unparks this thread; built once per thread so a poll costs no allocation.
    static THREAD_WAKER: Waker = Waker::from(Arc::new(Unpark(thread::current())));
}

struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// The task every launch runs: ready at once, `Ok` or `Err` as asked.
pub async fn task(ok: bool) -> Result<(), ()> {
    if ok { Ok(()) } else { Err(()) }
}
