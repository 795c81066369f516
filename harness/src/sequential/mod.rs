//! The sequential model test: random operation sequences over a few ids,
//! applied to a subject and to `spec::step`; every response, every id's state
//! and every woken `wait` must agree after every step.
//!
//! Each launch or revoke runs a gated future on its own current-thread
//! runtime, so a step ends a task exactly when the model says so: the gate
//! makes it return `Ok` or `Err` or panic, and dropping the runtime cancels it
//! part-way, as a runtime shutdown would.
//!
//! Rooms: [`reference`](mod@reference) (the steps and the spec's phases), `sut` (the
//! subject and what it has running), [`model`] (each step on both sides) and
//! `mismatch` (what disagreed); the runners are here.

mod mismatch;
pub mod model;
pub mod reference;
mod sut;

pub use crate::protocol::End;
pub use mismatch::{Kind, Mismatch};
pub use model::Model;
pub use reference::{IDS, Launcher, Phases, Spec, Step};
pub use sut::Sut;

use crate::subject::Subject;
use crate::support;
use mismatch::LAST;
use proptest::test_runner::{Config, RngAlgorithm, TestError, TestRng, TestRunner};
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest};
use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::Mutex;

/// Steps per sequence.
pub const STEPS: std::ops::Range<usize> = 1..40;

/// A shrunk sequence the subject disagreed with the spec on.
#[derive(Debug)]
pub struct Counterexample {
    /// The first disagreement of the shrunk sequence.
    pub mismatch: Mismatch,
    pub steps: Vec<Step>,
    /// The subject's name, the mismatch and the steps as a table.
    pub report: String,
}

/// Runs the model test against `S`, which must fail; returns the shrunk
/// sequence and its first mismatch with the spec.
pub fn counterexample<S: Subject + Default>() -> Counterexample {
    let config = Config {
        cases: 512,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new_with_rng(
        config.clone(),
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    // The typed mismatch of every failing candidate, by its steps: proptest
    // keeps only a string.
    let broken: Mutex<HashMap<String, Mismatch>> = Mutex::default();
    let result = support::quietly(|| {
        runner.run(
            &Spec::sequential_strategy(STEPS),
            |(phases, steps, seen)| {
                let key = format!("{steps:?}");
                LAST.take();
                let ran = catch_unwind(AssertUnwindSafe(|| {
                    Model::<S>::test_sequential(config.clone(), phases, steps, seen)
                }));
                if let Err(panic) = ran {
                    let mismatch = LAST.take().unwrap_or_else(|| Mismatch {
                        kind: Kind::Other,
                        detail: support::panic_message(&*panic),
                    });
                    support::lock(&broken).insert(key, mismatch);
                    resume_unwind(panic);
                }
                Ok(())
            },
        )
    });
    match result {
        Err(TestError::Fail(_, (_, steps, _))) => {
            let mismatch = support::lock(&broken)
                .remove(&format!("{steps:?}"))
                .expect("the shrunk sequence failed, so its mismatch was kept");
            let mut report = format!("{} — {mismatch}\n| # | step |\n|---|------|\n", S::NAME);
            for (i, step) in steps.iter().enumerate() {
                report += &format!("| {} | {step:?} |\n", i + 1);
            }
            eprintln!("{report}");
            Counterexample {
                mismatch,
                steps,
                report,
            }
        }
        other => panic!(
            "{}: the model test found no counterexample: {other:?}",
            S::NAME
        ),
    }
}

/// Runs `cases` random sequences against a fresh `S` each; panics with the
/// shrunk sequence on the first disagreement with the spec.
pub fn check<S: Subject + Default>(cases: u32) {
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config.clone());
    runner
        .run(
            &Spec::sequential_strategy(STEPS),
            |(phases, steps, seen)| {
                Model::<S>::test_sequential(config.clone(), phases, steps, seen);
                Ok(())
            },
        )
        .unwrap_or_else(|error| panic!("{}: {error}", S::NAME));
}
