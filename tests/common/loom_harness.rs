//! Runs loom models and reports what they explored.
//!
//! `loom::model::Builder::check` says nothing about how many interleavings it
//! ran, and a bite test must tell "loom found the bug" from "loom found
//! nothing". So every model runs through [`explore`] (counts its
//! interleavings, takes the preemption bound from `LOOM_MAX_PREEMPTIONS` or
//! the model's default) or [`expect_violation`] (a fixed bound, and the
//! violation's message and trace, or a failure if there was none).
#![allow(dead_code)]

use async_tasks_recorder_harness::support::{lock, panic_message};
use std::fmt::Display;
use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What one thread of a model did, in the order the interleaving ran it.
///
/// A std mutex, invisible to loom: loom runs one model thread at a time on
/// one OS thread and switches only at its own operations, so the lock is
/// never contended and adds no interleavings.
#[derive(Clone, Default)]
pub struct Trace {
    events: Arc<Mutex<Vec<String>>>,
}

impl Trace {
    /// Appends `event` by `thread`.
    pub fn note(&self, thread: &str, event: impl Display) {
        self.lock().push(format!("{thread}: {event}"));
    }

    /// The events so far, one per line.
    pub fn render(&self) -> String {
        self.lock()
            .iter()
            .enumerate()
            .map(|(step, event)| format!("  {:>2}. {event}\n", step + 1))
            .collect()
    }

    fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        lock(&self.events)
    }
}

/// Fails the model with `message` and the interleaving that led to it.
#[track_caller]
pub fn violation(trace: &Trace, message: impl Display) -> ! {
    panic!("{message}\ninterleaving:\n{}", trace.render())
}

/// Explores every interleaving of `model` within the preemption bound:
/// `LOOM_MAX_PREEMPTIONS` when set, else `default_bound`. Panics, with the
/// violation, if one interleaving breaks an assertion or deadlocks.
pub fn explore<M>(name: &str, default_bound: usize, model: M)
where
    M: Fn(&Trace) + Send + Sync + 'static,
{
    let bound = loom::model::Builder::new()
        .preemption_bound
        .unwrap_or(default_bound);
    let counter = Arc::new(AtomicUsize::new(0));
    let elapsed = run(bound, Trace::default(), counter.clone(), model);
    report(format_args!(
        "loom model {name}: {} interleavings, preemption bound {bound}, {:.2} s",
        counter.load(Ordering::Relaxed),
        elapsed.as_secs_f64()
    ));
}

/// Runs `model` at a fixed preemption `bound` and returns loom's report of the
/// violation it must find, followed by the failing interleaving's trace.
/// Panics if every interleaving passes: a checker that finds nothing fails.
pub fn expect_violation<M>(name: &str, bound: usize, model: M) -> String
where
    M: Fn(&Trace) + Send + Sync + 'static,
{
    let trace = Trace::default();
    let counter = Arc::new(AtomicUsize::new(0));
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        run(bound, trace.clone(), counter.clone(), model)
    }));
    let interleavings = counter.load(Ordering::Relaxed);
    let Err(panic) = outcome else {
        panic!(
            "loom explored all {interleavings} interleavings of {name} at preemption bound \
             {bound} and found no violation"
        );
    };
    let message = panic_message(&*panic);
    // loom reports a deadlock from its scheduler, without the model's trace.
    let message = if message.contains("\ninterleaving:\n") {
        message
    } else {
        format!("{message}\ninterleaving:\n{}", trace.render())
    };
    report(format_args!(
        "loom bite {name}: violation at interleaving {interleavings}, preemption bound \
         {bound}: {message}"
    ));
    message
}

/// Held while a model explores. scc's memory reclamation (sdd) keeps
/// process-wide state, so two models exploring at once in one test process
/// disturb each other, and loom stops with "Is the model fully
/// deterministic?". The models take turns whatever `--test-threads` says.
static EXPLORING: Mutex<()> = Mutex::new(());

/// Checks `model` at `bound`, counting interleavings into `counter`, and
/// returns the time the exploration took.
fn run<M>(bound: usize, trace: Trace, counter: Arc<AtomicUsize>, model: M) -> Duration
where
    M: Fn(&Trace) + Send + Sync + 'static,
{
    let _turn = lock(&EXPLORING);
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(bound);
    let start = Instant::now();
    builder.check(move || {
        counter.fetch_add(1, Ordering::Relaxed);
        trace.clear();
        model(&trace);
    });
    start.elapsed()
}

/// Writes one line straight to stdout. libtest captures `println!` of
/// passing tests, and loom's own debug output would drown `--nocapture`; the
/// exploration counts are the suite's result, so they bypass the capture.
fn report(line: std::fmt::Arguments<'_>) {
    let mut stdout = std::io::stdout().lock();
    // A closed stdout loses the report, not the verdict.
    let _ = writeln!(stdout, "{line}");
}
