//! Deterministic simulation of the recorder's own client code: seeded runs
//! of `PgRecorder` (its grant, finish loop, resolution, renewals, drop
//! guards, sweeper and bounds) against the simulated database, whose
//! statements apply late, twice, never, or in doubt (`driver.rs`). Each
//! run checks every property; a failure prints its seed, which replays it
//! exactly, and the end of its trace.
//!
//! `SIM_SEEDS` sets the seeds per class (default 40, for a debug
//! `cargo test`), `SIM_FIRST_SEED` the first, `SIM_BITE_BUDGET` the seeds
//! a bite may search; `.ci/simulation.sh` runs 10,000 seeds per class in
//! release, `SIM_SEEDS=1000000` the deep pass.

mod common;
#[path = "simulation/driver.rs"]
mod driver;

use async_tasks_recorder_pg::Mutant;
use driver::{Class, Defect, Report, run};

fn var(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

const CLASSES: [Class; 4] = [
    Class::Definite,
    Class::InDoubt,
    Class::ClockForward,
    Class::ClockBackward,
];

#[test]
fn every_seed_keeps_every_property() {
    let first = var("SIM_FIRST_SEED", 0);
    let seeds = first..first + var("SIM_SEEDS", 40);
    for class in CLASSES {
        let (mut statements, mut answers, mut in_doubt) = (0, 0, 0);
        let (mut successes, mut histories) = (0, 0);
        for seed in seeds.clone() {
            let report = run(seed, class, None);
            assert!(report.violations.is_empty(), "{}", report.show(seed, class));
            statements += report.statements;
            answers += report.answers;
            in_doubt += report.in_doubt;
            successes += report.applied_successes;
            histories += report.linearizable.unwrap_or(0);
        }
        println!(
            "{class:?}: {} seeds passed: {statements} statements, {answers} finish answers \
             ({in_doubt} in doubt), {successes} applied successes, {histories} per-id \
             histories linearizable",
            seeds.end - seeds.start
        );
    }
}

#[test]
fn one_seed_replays_the_same_run() {
    for seed in [1, 7, 42] {
        let first = run(seed, Class::InDoubt, None);
        let again = run(seed, Class::InDoubt, None);
        assert_eq!(first.trace, again.trace, "seed {seed} ran two ways");
        assert_eq!(first.violations, again.violations);
        assert!(
            first.statements > 100,
            "seed {seed}: {} statements",
            first.statements
        );
    }
}

/// The first seed of `class` within `budget` on which `defect` breaks
/// `property`; fails if there is none.
fn bite_within(budget: u64, class: Class, defect: Defect, property: &str) -> Report {
    for seed in 0..budget {
        let report = run(seed, class, Some(defect));
        if report.broke(property) {
            println!("{defect:?} broke {property} at seed {seed}:");
            println!("{}", report.show(seed, class));
            return report;
        }
    }
    panic!("{defect:?}: {property} held on {budget} seeds");
}

/// [`bite_within`] the default budget, 400 seeds.
fn bite(class: Class, defect: Defect, property: &str) -> Report {
    bite_within(var("SIM_BITE_BUDGET", 400), class, defect, property)
}

#[test]
fn bite_a_resent_finish_answered_stale_without_rereading() {
    let defect = Defect::Client(Mutant::ResentFinishStale);
    bite(Class::InDoubt, defect, "answer_agrees_with_rows");
}

/// The rarest: a finish in doubt whose replica is cut off past its lease,
/// while the other replica takes the id, succeeds and revokes it, and
/// whose own sends never applied. A few thousand seeds.
#[test]
fn bite_resolution_by_the_epoch_moving_on() {
    let budget = var("SIM_BITE_BUDGET", 6_000).max(6_000);
    let defect = Defect::Client(Mutant::ResolvedByEpoch);
    bite_within(budget, Class::InDoubt, defect, "answer_agrees_with_rows");
}

#[test]
fn bite_a_lost_lease_clock_started_at_the_reply() {
    let defect = Defect::Client(Mutant::LeaseClockFromReply);
    bite(Class::InDoubt, defect, "is_lost_when_lapsed");
}

#[test]
fn bite_a_dropped_launch_that_leaves_its_claim() {
    let defect = Defect::Client(Mutant::GrantInCallersTask);
    bite(Class::Definite, defect, "dropped_call_settles");
}

/// A finish without its fence lets a zombie's finish apply to the row of
/// the attempt that took its id over: the zombie is answered `Applied` for
/// a row that never held its fence. (It cannot make a second success in
/// one epoch: the state guard it keeps admits one finish per grant.)
#[test]
fn bite_a_finish_without_its_fence() {
    bite(
        Class::InDoubt,
        Defect::UnfencedFinish,
        "answer_agrees_with_rows",
    );
}

/// Reads of a stale copy change no row (every write keeps its guard), so
/// only the histories show them: a query or refusal that saw a state the
/// id had already left.
#[test]
fn bite_stale_reads_are_not_linearizable() {
    bite(Class::Definite, Defect::StaleReads, "linearizable");
}
