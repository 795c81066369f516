//! The test switches of one recorder: a shifted database clock, a client
//! clock run fast, renewals paused, and named statements behind a pooler. The statements (`db.rs`) and the
//! renewal loop (`attempt.rs`) read them; only the calls of `hooks.rs` flip
//! them, and those exist only with the `test-hooks` feature. Without it
//! every switch is a constant that is off: no production build can shift a
//! clock or pause a renewal, and no claim carries the client's clock.

#[cfg(feature = "test-hooks")]
pub(crate) use on::Switches;

/// A wrong answer of the client code, brought back on purpose: each is a
/// defect the simulation must find from a seed (`pg/tests/simulation.rs`).
/// Only the test hooks can turn one on.
#[derive(Clone, Copy, Debug, Eq, PartialEq, Hash)]
#[repr(u8)]
pub enum Mutant {
    /// A resent finish that matched nothing is answered `Stale` without
    /// re-reading the row (an earlier send may have applied late).
    ResentFinishStale = 1,
    /// An in-doubt success is resolved `Applied` because the id's epoch
    /// moved on, without the row's success fence proving it.
    ResolvedByEpoch = 2,
    /// The lost-lease clock starts at each reply instead of each send.
    LeaseClockFromReply = 4,
    /// A grant's write runs in the caller's task: a caller dropped while
    /// it is in flight leaves its claim on the row, held by nobody.
    GrantInCallersTask = 8,
}

#[cfg(not(feature = "test-hooks"))]
pub(crate) use off::Switches;

/// The switches of a production build: all off, and free.
#[cfg(not(feature = "test-hooks"))]
mod off {
    #[derive(Default)]
    pub(crate) struct Switches {
        _off: (),
    }

    impl Switches {
        /// The shift parameter of every statement that judges a lease: none.
        pub(crate) fn shift(&self) -> i64 {
            0
        }

        /// Leases are always renewed.
        pub(crate) fn renewing(&self) -> bool {
            true
        }

        /// Behind a pooler, statements are always unnamed.
        pub(crate) fn named_statements(&self) -> bool {
            false
        }

        /// No mutant is ever on.
        pub(crate) fn mutant(&self, _: super::Mutant) -> bool {
            false
        }
    }
}

#[cfg(feature = "test-hooks")]
mod on {
    use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, Ordering};
    use std::time::{Duration, SystemTime};

    /// The test switches of one recorder, shared by its clones and attempts.
    pub(crate) struct Switches {
        /// Microseconds added to the database clock in every statement.
        shift_micros: AtomicI64,
        /// When false, leases are not renewed, as if this replica's process
        /// were paused (a GC pause, SIGSTOP) while its tasks run.
        renewing: AtomicBool,
        /// Microseconds added to this replica's clock, which only a
        /// known-bad claim statement reads.
        client_skew_micros: AtomicI64,
        /// When true, statements are prepared under names even behind a
        /// pooler: the defect the pooler tests must catch.
        named_statements: AtomicBool,
        /// The mutants turned on, one bit each.
        mutants: AtomicU8,
    }

    impl Default for Switches {
        fn default() -> Self {
            Switches {
                shift_micros: AtomicI64::new(0),
                renewing: AtomicBool::new(true),
                client_skew_micros: AtomicI64::new(0),
                named_statements: AtomicBool::new(false),
                mutants: AtomicU8::new(0),
            }
        }
    }

    /// `by` in microseconds, saturating.
    fn saturating_micros(by: Duration) -> i64 {
        i64::try_from(by.as_micros()).unwrap_or(i64::MAX)
    }

    impl Switches {
        /// The shift parameter of every statement that judges a lease.
        pub(crate) fn shift(&self) -> i64 {
            self.shift_micros.load(Ordering::Relaxed)
        }

        /// This replica's clock, skewed: the parameter of the known-bad
        /// claim that judges leases by the client's clock.
        pub(crate) fn client_now(&self) -> SystemTime {
            let skew = self.client_skew_micros.load(Ordering::Relaxed);
            SystemTime::now() + Duration::from_micros(skew.max(0) as u64)
        }

        /// Whether leases are renewed.
        pub(crate) fn renewing(&self) -> bool {
            self.renewing.load(Ordering::Relaxed)
        }

        /// Judge leases as if `by` had passed on the database clock.
        pub(crate) fn shift_clock(&self, by: Duration) {
            self.shift_micros
                .store(saturating_micros(by), Ordering::Relaxed);
        }

        /// Run this replica's own clock `by` ahead.
        pub(crate) fn skew_client_clock(&self, by: Duration) {
            self.client_skew_micros
                .store(saturating_micros(by), Ordering::Relaxed);
        }

        /// Stop (or resume) renewing leases.
        pub(crate) fn set_renewing(&self, on: bool) {
            self.renewing.store(on, Ordering::Relaxed);
        }

        /// Whether statements are prepared under names behind a pooler.
        pub(crate) fn named_statements(&self) -> bool {
            self.named_statements.load(Ordering::Relaxed)
        }

        /// Prepare statements under names even behind a pooler.
        pub(crate) fn set_named_statements(&self, on: bool) {
            self.named_statements.store(on, Ordering::Relaxed);
        }

        /// Whether `mutant` is on.
        pub(crate) fn mutant(&self, mutant: super::Mutant) -> bool {
            self.mutants.load(Ordering::Relaxed) & mutant as u8 != 0
        }

        /// Turns `mutant` on.
        pub(crate) fn set_mutant(&self, mutant: super::Mutant) {
            self.mutants.fetch_or(mutant as u8, Ordering::Relaxed);
        }
    }
}
