//! The test switches of one recorder: a shifted database clock, a client
//! clock run fast, renewals paused, and named statements behind a pooler. The statements (`db.rs`) and the
//! renewal loop (`attempt.rs`) read them; only the calls of `hooks.rs` flip
//! them, and those exist only with the `test-hooks` feature. Without it
//! every switch is a constant that is off: no production build can shift a
//! clock or pause a renewal, and no claim carries the client's clock.

#[cfg(feature = "test-hooks")]
pub(crate) use on::Switches;

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
    }
}

#[cfg(feature = "test-hooks")]
mod on {
    use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
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
    }

    impl Default for Switches {
        fn default() -> Self {
            Switches {
                shift_micros: AtomicI64::new(0),
                renewing: AtomicBool::new(true),
                client_skew_micros: AtomicI64::new(0),
                named_statements: AtomicBool::new(false),
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
    }
}
