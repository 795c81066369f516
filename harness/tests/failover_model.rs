//! The fenced protocol through a failover, checked exhaustively at small
//! scope (`harness/src/failover.rs`): the crate's design keeps every
//! property, and each weaker choice has the counterexample it must have.

use async_tasks_recorder_harness::explore::{Report, check};
use async_tasks_recorder_harness::failover::{
    ACKNOWLEDGED_SUCCESS_SURVIVES, CancelledWait, Design, FENCES_NEVER_REISSUED, Failover,
    ONE_SUCCESS_PER_EPOCH, Replication, Resolution, Scope,
};

/// Far above what the default scope reaches: a check that hits it is
/// reported incomplete, never a pass.
const MAX_STATES: usize = 2_000_000;

fn run(design: Design) -> Report<Failover> {
    let model = Failover {
        design,
        scope: Scope::default(),
    };
    let report = check(&model, MAX_STATES);
    println!(
        "{design:?}: {} states, {} transitions, complete: {}",
        report.states, report.transitions, report.complete
    );
    report
}

/// Every property of the model.
const EVERY_PROPERTY: [&str; 3] = [
    ACKNOWLEDGED_SUCCESS_SURVIVES,
    ONE_SUCCESS_PER_EPOCH,
    FENCES_NEVER_REISSUED,
];

/// The counterexample of each of `properties` in `report`, shown; fails if
/// one has none.
fn violated(report: &Report<Failover>, properties: &[&str], design: Design) {
    for property in properties {
        match report.counterexample(property) {
            Some(found) => println!("{}", found.show()),
            None => panic!("{design:?}: no counterexample of {property:?}"),
        }
    }
}

#[test]
fn the_chosen_design_keeps_every_property_through_a_promotion() {
    let report = run(Design::CHOSEN);
    for found in &report.counterexamples {
        println!("{}", found.show());
    }
    assert!(report.complete, "the search was cut short");
    assert!(report.counterexamples.is_empty(), "the chosen design fails");
    assert!(
        report.states > 1_000,
        "only {} states: the scope is too small",
        report.states
    );
}

#[test]
fn asynchronous_replication_loses_a_success_grants_two_and_reissues_a_fence() {
    let design = Design {
        replication: Replication::Asynchronous,
        ..Design::CHOSEN
    };
    violated(&run(design), &EVERY_PROPERTY, design);
}

#[test]
fn a_cancelled_synchronous_wait_taken_as_an_answer_loses_what_it_acknowledged() {
    let design = Design {
        cancelled_wait: CancelledWait::Trusted,
        ..Design::CHOSEN
    };
    violated(&run(design), &EVERY_PROPERTY, design);
}

#[test]
fn resolving_a_cancelled_wait_by_reading_the_row_acknowledges_a_success_a_promotion_loses() {
    let design = Design {
        resolution: Resolution::TrustRead,
        ..Design::CHOSEN
    };
    let report = run(design);
    violated(
        &report,
        &[ACKNOWLEDGED_SUCCESS_SURVIVES, ONE_SUCCESS_PER_EPOCH],
        design,
    );
    assert!(
        report.counterexample(FENCES_NEVER_REISSUED).is_none(),
        "a claim in doubt is never used, so its fence is never granted twice"
    );
}

/// A wider scope: three claims per worker, two promotions, three cancelled
/// waits.
#[test]
fn the_chosen_design_holds_through_two_promotions() {
    let model = Failover {
        design: Design::CHOSEN,
        scope: Scope {
            claims: 3,
            failovers: 2,
            cancels: 3,
            resolutions: 2,
        },
    };
    let report = check(&model, MAX_STATES);
    println!(
        "two promotions: {} states, {} transitions",
        report.states, report.transitions
    );
    for found in &report.counterexamples {
        println!("{}", found.show());
    }
    assert!(report.holds(), "complete: {}", report.complete);
}
