//! Loom models of the recorder's own code, scc's loom build included, and
//! bite tests that run the same models against known-bad protocols.
//!
//! Every model is one generic function over `Protocol`, in `tests/loom/` by
//! what it exercises (`launches`, `revokes`, `waits`, `listings`, and the
//! `calls` they share). The `#[test]`s here run it on the recorder, where
//! every interleaving within the preemption bound must pass, and on the
//! protocols of `tests/common/protocols.rs` and `tests/common/mutants.rs`,
//! where loom must report the violation.
//!
//! Run with `.ci/loom.sh`, or `RUSTFLAGS="--cfg loom -C debug-assertions" cargo test --release --test loom`.
//! Without `--cfg loom` this file compiles to nothing (scc's loom build
//! panics outside a model, so a plain `cargo test` must not build it);
//! `.ci/loom.sh` counts the tests and explorations that ran, so an empty run
//! cannot pass.
#![cfg(loom)]

#[path = "common/loom_blocking.rs"]
mod loom_blocking;
#[path = "common/loom_harness.rs"]
mod loom_harness;
#[path = "common/mutants.rs"]
mod mutants;
#[path = "common/protocols.rs"]
mod protocols;

#[path = "loom/calls.rs"]
mod calls;
#[path = "loom/launches.rs"]
mod launches;
#[path = "loom/listings.rs"]
mod listings;
#[path = "loom/revokes.rs"]
mod revokes;
#[path = "loom/waits.rs"]
mod waits;

use async_tasks_recorder::AsyncTasksRecorder;
use launches::{
    Abandon, abandoned_launch_and_retry, concurrent_launches, launch_finish_query, redundant_launch,
};
use listings::{failed_listing_during_relaunches, listing_during_transitions};
use loom_harness::{expect_violation, explore};
use mutants::{FailedRevokeRemoves, Faithful, LostWakeup, SplitLaunch, UnlockedFailedIndex};
use protocols::{AllSet202, Id, KeepsWakers, ThreeSets};
use revokes::{Launcher, concurrent_revokes, listing_during_a_revoke, revoke_launch_query};
use waits::{cancelled_wait_and_finish, wait_and_finish};

type Recorder = AsyncTasksRecorder<Id>;

/// The preemption bound of two-thread models: one more than the usual 2,
/// since every two-thread model explores its bound-3 space in under 40 s.
/// `LOOM_MAX_PREEMPTIONS` overrides it, and [`BOUND_3_THREADS`], for deeper
/// local runs.
const BOUND: usize = 3;

/// The preemption bound of three-thread models. An operation on scc under
/// loom is dozens of atomic steps, so a third thread at bound 2 costs
/// hundreds of thousands to millions of interleavings (1 to over 5 minutes)
/// per model. Each three-thread model has a two-thread twin at [`BOUND`].
const BOUND_3_THREADS: usize = 1;

/// The bound of the bite tests: each violation needs at most two preemptions.
const BITE_BOUND: usize = 2;

// ---------------------------------------------------------------------------
// The recorder: every interleaving within the bound passes
// ---------------------------------------------------------------------------

#[test]
fn one_of_two_concurrent_launches_wins() {
    explore("1 two launches of one id", BOUND, |trace| {
        concurrent_launches::<Recorder>(trace, 2)
    });
}

#[test]
fn one_of_three_concurrent_launches_wins() {
    explore("1 three launches of one id", BOUND_3_THREADS, |trace| {
        concurrent_launches::<Recorder>(trace, 3)
    });
}

#[test]
fn queries_follow_a_launch_that_succeeds() {
    explore("2 launch-finish(Ok)-query", BOUND, |trace| {
        launch_finish_query::<Recorder>(trace, Ok(()))
    });
}

#[test]
fn queries_follow_a_launch_that_fails() {
    explore("2 launch-finish(Err)-query", BOUND, |trace| {
        launch_finish_query::<Recorder>(trace, Err(()))
    });
}

#[test]
fn a_redundant_launch_leaves_success_alone() {
    explore(
        "3 redundant launch-query",
        BOUND,
        redundant_launch::<Recorder>,
    );
}

#[test]
fn a_cancelled_launch_does_not_wedge_a_retry() {
    explore("4 cancelled launch-retry", BOUND, |trace| {
        abandoned_launch_and_retry::<Recorder>(trace, Abandon::Cancel)
    });
}

#[test]
fn a_panicking_task_does_not_wedge_a_retry() {
    explore("4 panicking task-retry", BOUND, |trace| {
        abandoned_launch_and_retry::<Recorder>(trace, Abandon::Panic)
    });
}

#[test]
fn a_revoke_and_a_launch_keep_one_success_per_epoch() {
    explore("5 revoke-(launch, query)", BOUND, |trace| {
        revoke_launch_query::<Recorder>(trace, Launcher::Observer)
    });
}

#[test]
fn a_revoke_a_launch_and_a_query_keep_one_success_per_epoch() {
    explore("5 revoke-launch-query", BOUND_3_THREADS, |trace| {
        revoke_launch_query::<Recorder>(trace, Launcher::OwnThread)
    });
}

#[test]
fn one_of_two_concurrent_revokes_wins() {
    explore("5 revoke-revoke", BOUND, concurrent_revokes::<Recorder>);
}

#[test]
fn every_waiter_wakes_with_success() {
    explore("6 wait-finish(Ok)", BOUND, |trace| {
        wait_and_finish::<Recorder>(trace, Ok(()), 1)
    });
}

#[test]
fn both_of_two_waiters_wake_with_success() {
    explore("6 two waits-finish(Ok)", BOUND_3_THREADS, |trace| {
        wait_and_finish::<Recorder>(trace, Ok(()), 2)
    });
}

#[test]
fn every_waiter_wakes_with_failure() {
    explore("6 wait-finish(Err)", BOUND, |trace| {
        wait_and_finish::<Recorder>(trace, Err(()), 1)
    });
}

#[test]
fn a_wait_cancelled_during_the_finish_leaves_no_waker() {
    explore(
        "6 cancelled wait-finish(Ok)",
        BOUND,
        cancelled_wait_and_finish::<Recorder>,
    );
}

#[test]
fn a_listing_during_transitions_is_weakly_consistent() {
    explore(
        "7 listing-transitions",
        BOUND,
        listing_during_transitions::<Recorder>,
    );
}

#[test]
fn a_failed_listing_during_relaunches_is_weakly_consistent() {
    explore(
        "9 failed listing-relaunches",
        BOUND,
        failed_listing_during_relaunches::<Recorder>,
    );
}

// ---------------------------------------------------------------------------
// The checker bites: the same models catch the known-bad protocols
// ---------------------------------------------------------------------------

#[test]
fn model_2_catches_0_2_2_reading_working_then_not_found() {
    let found = expect_violation("2 launch-finish(Ok)-query on 0.2.2", BITE_BOUND, |trace| {
        launch_finish_query::<ThreeSets>(trace, Ok(()))
    });
    assert!(
        found.contains("an observer read Working, then NotFound"),
        "{found}"
    );
}

#[test]
fn model_3_catches_2_0_2_reading_working_forever_after_success() {
    let found = expect_violation(
        "3 redundant launch-query on 2.0.2",
        BITE_BOUND,
        redundant_launch::<AllSet202>,
    );
    assert!(
        found.contains("reads Working forever after it succeeded"),
        "{found}"
    );
}

#[test]
fn model_6_catches_the_lost_wake_up_of_the_wait_mutant() {
    let found = expect_violation(
        "6 wait-finish(Ok) on the wait mutant",
        BITE_BOUND,
        |trace| wait_and_finish::<LostWakeup>(trace, Ok(()), 1),
    );
    assert!(found.starts_with("deadlock"), "{found}");
}

#[test]
fn model_6_catches_the_wakers_kept_by_dropped_waits() {
    let found = expect_violation(
        "6 cancelled wait-finish(Ok) on the waker-keeping wait",
        BITE_BOUND,
        cancelled_wait_and_finish::<KeepsWakers>,
    );
    assert!(
        found.contains("a dropped wait left 1 waker(s) with the Working id"),
        "{found}"
    );
}

#[test]
fn model_1_catches_two_winners_of_the_split_launch_mutant() {
    let found = expect_violation(
        "1 two launches of one id on the split-launch mutant",
        BITE_BOUND,
        |trace| concurrent_launches::<SplitLaunch>(trace, 2),
    );
    assert!(found.contains("2 of 2 launches won"), "{found}");
}

#[test]
fn model_8_catches_a_success_forgotten_by_the_failed_revoke_removal_mutant() {
    let found = expect_violation(
        "8 failed revoke-listing on the failed revoke removal mutant",
        BITE_BOUND,
        |trace| listing_during_a_revoke::<FailedRevokeRemoves>(trace, Err(())),
    );
    assert!(
        found.contains("the revoke failed, yet a listing of Success"),
        "{found}"
    );
}

// ---------------------------------------------------------------------------
// The mutants' base passes the models that bite its mutants, at their bound,
// so each bite is the seeded defect's and not the base's
// ---------------------------------------------------------------------------

#[test]
fn the_mutants_base_lets_one_of_two_launches_win() {
    explore(
        "1 two launches of one id on the mutants' base",
        BITE_BOUND,
        |trace| concurrent_launches::<Faithful>(trace, 2),
    );
}

#[test]
fn the_mutants_base_wakes_every_waiter() {
    explore(
        "6 wait-finish(Ok) on the mutants' base",
        BITE_BOUND,
        |trace| wait_and_finish::<Faithful>(trace, Ok(()), 1),
    );
}

#[test]
fn the_mutants_base_keeps_listing_a_success_whose_revoke_failed() {
    explore(
        "8 failed revoke-listing on the mutants' base",
        BITE_BOUND,
        |trace| listing_during_a_revoke::<Faithful>(trace, Err(())),
    );
}

#[test]
fn a_listing_during_a_revoke_is_weakly_consistent() {
    explore("8 revoke-listing", BOUND, |trace| {
        listing_during_a_revoke::<Recorder>(trace, Ok(()))
    });
}

#[test]
fn model_9_catches_a_failed_index_changed_outside_the_entry_lock() {
    let found = expect_violation(
        "9 failed listing-relaunches on the unlocked index",
        BITE_BOUND,
        failed_listing_during_relaunches::<UnlockedFailedIndex>,
    );
    assert!(
        found.contains("once every operation returned, Failed lists [1, 2]"),
        "{found}"
    );
}
