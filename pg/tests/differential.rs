//! The simulated database (`sim.rs`) against PostgreSQL: random sequences
//! of operations, each run without faults on both, by the very same
//! recorder code, compared after every step.
//!
//! Each sequence runs on a fresh table of the throwaway cluster and on a
//! fresh `sim::Server`, over the ids of `differential/ops.rs`. After each
//! operation both sides must give the same answer (grants with their fence
//! and epoch, refusals, `Finish::Applied` or `Stale`, errors by kind, ids,
//! pages, counts, what the sweep expired, what a resolve proves), and then
//! the same rows: every row's phase, epoch, fence, success fence and the
//! tick its lease runs out at, read from the table itself, and `read` of
//! every id (lapsed or not) through the recorder of the current tick.
//! Leases lapse by ticks of a clock both sides judge alike
//! (`differential/side.rs`), so takeovers, zombie finishes, the sweep and
//! `wait`'s expiry are all reached. Once a sequence's operations are done,
//! every attempt still held is dropped, a step each, so that the drop
//! guard's finishes are compared too.
//!
//! `DIFF_SEQUENCES` sets the number of sequences (default 300),
//! `DIFF_SEED` the seed (default: read off the clock; a failure names it).
//! A difference is shrunk to a short sequence, then reported with the
//! step, both sides' answers and rows, and the simulator's trace.
//! `.ci/pg-deep.sh` runs 2,000 sequences.

mod common;
#[path = "differential/ops.rs"]
mod ops;
#[path = "differential/side.rs"]
mod side;

use async_tasks_recorder_harness::support::env_or;
use async_tasks_recorder_pg::Outcome;
use common::{cluster, connect_to, within};
use ops::{Answer, IDS, Op, id_of, label};
use proptest::test_runner::{Config as Cases, RngSeed, TestCaseError, TestError, TestRunner};
use side::{Side, Simulator, Snapshot};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The longest generated sequence.
const LONGEST: usize = 32;

/// What the compared sequences added up to.
#[derive(Debug, Default)]
struct Figures {
    sequences: u64,
    operations: u64,
    rows: u64,
    reads: u64,
    /// Answers compared, by kind (`ops::label`).
    answers: BTreeMap<String, u64>,
}

impl Figures {
    fn add(&mut self, other: Figures) {
        self.sequences += other.sequences;
        self.operations += other.operations;
        self.rows += other.rows;
        self.reads += other.reads;
        for (kind, n) in other.answers {
            *self.answers.entry(kind).or_default() += n;
        }
    }

    fn print(&self, what: &str, seconds: f64, seed: u64) {
        eprintln!(
            "{what}: {} sequences, {} operations; after each, {} rows and {} reads \
             compared in all; {seconds:.1} s (seed {seed})",
            self.sequences, self.operations, self.rows, self.reads
        );
        for (kind, n) in &self.answers {
            eprintln!("  {n:>7}  {kind}");
        }
    }
}

/// The first step at which the two sides differ.
struct Divergence {
    step: usize,
    /// `answers` or `rows`.
    what: &'static str,
    /// The sequence, with the drops that settle it so far.
    ops: Vec<Op>,
    /// The answers of the steps before, alike on both sides.
    agreed: Vec<Answer>,
    postgres: (Answer, Snapshot),
    simulated: (Answer, Snapshot),
    trace: Vec<String>,
}

impl fmt::Display for Divergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (step, op) = (self.step, self.ops[self.step]);
        writeln!(
            f,
            "PostgreSQL and the simulator differ in the {} of step {step}, {op:?}",
            self.what
        )?;
        writeln!(f, "the sequence ({} operations):", self.ops.len())?;
        for (i, op) in self.ops.iter().enumerate() {
            match self.agreed.get(i) {
                Some(answer) => writeln!(f, "    {i:>2} {op:?} -> {answer}")?,
                None if i == step => writeln!(f, "  > {i:>2} {op:?}")?,
                None => writeln!(f, "    {i:>2} {op:?} (not run)")?,
            }
        }
        for (side, (answer, snapshot)) in [
            ("PostgreSQL", &self.postgres),
            ("the simulator", &self.simulated),
        ] {
            writeln!(f, "{side} answered {answer}")?;
            writeln!(f, "  {side}'s rows:")?;
            for (id, row) in &snapshot.rows {
                writeln!(f, "    {id}: {row:?}")?;
            }
            writeln!(f, "  {side}'s reads:")?;
            for (id, read) in &snapshot.reads {
                writeln!(f, "    {id}: {read:?}")?;
            }
        }
        writeln!(f, "the simulator's trace, its last lines:")?;
        for line in &self.trace {
            writeln!(f, "    {line}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Divergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Runs `ops` on a fresh table and a fresh `simulator`, comparing after
/// every step, then drops what is still held, a step each.
async fn compare(
    ops: &[Op],
    simulator: Simulator,
    client: &Arc<tokio_postgres::Client>,
) -> Result<Figures, Box<Divergence>> {
    let mut postgres = Side::postgres(client.clone()).await;
    let mut simulated = Side::simulated(simulator);
    let mut figures = Figures {
        sequences: 1,
        ..Figures::default()
    };
    let mut ops = ops.to_vec();
    let mut agreed = Vec::new();
    let mut before = postgres.snapshot().await;
    for step in 0.. {
        if step == ops.len() {
            if postgres.held() == 0 && simulated.held() == 0 {
                break;
            }
            ops.push(Op::Drop(0));
        }
        let op = ops[step];
        // The sides run side by side: neither sees the other. (Boxed: the
        // calls' futures are large, and a debug build's stack is not.)
        let (pg, sim) = tokio::join!(Box::pin(postgres.apply(op)), Box::pin(simulated.apply(op)));
        let (pg_rows, sim_rows) = tokio::join!(
            Box::pin(postgres.snapshot()),
            Box::pin(simulated.snapshot())
        );
        if pg != sim || pg_rows != sim_rows {
            return Err(Box::new(Divergence {
                step,
                what: if pg != sim { "answers" } else { "rows" },
                ops,
                agreed,
                postgres: (pg, pg_rows),
                simulated: (sim, sim_rows),
                trace: simulated.trace(40),
            }));
        }
        let id = id_of(&op).or(match &pg {
            Answer::Dropped { id, .. } => Some(*id),
            _ => None,
        });
        let kind = label(&op, &pg, id.and_then(|id| before.read(id)));
        *figures.answers.entry(kind).or_default() += 1;
        figures.operations += 1;
        figures.rows += pg_rows.rows.len() as u64;
        figures.reads += pg_rows.reads.len() as u64;
        before = pg_rows;
        agreed.push(pg);
    }
    postgres.close().await;
    simulated.close().await;
    Ok(figures)
}

/// The runtime of every sequence: the sides' calls, the attempts' renewal
/// loops and drop guards, the plain client's connection.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The plain client that reads the cluster's tables (and drops them).
fn client(runtime: &tokio::runtime::Runtime) -> Arc<tokio_postgres::Client> {
    let config = cluster().config("postgres");
    Arc::new(runtime.block_on(within(60, "connect", connect_to(&config))))
}

/// `DIFF_SEED`, or one read off the clock.
fn seed() -> u64 {
    let clock = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    env_or("DIFF_SEED", clock)
}

/// `cases` sequences from `seed`; a failing one is shrunk by up to
/// `shrinks` runs (each a sequence on both sides).
fn runner(cases: u32, seed: u64, shrinks: u32) -> TestRunner {
    TestRunner::new(Cases {
        cases,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(seed),
        max_shrink_iters: shrinks,
        max_shrink_time: 300_000,
        ..Cases::default()
    })
}

/// Runs generated sequences against `simulator` until one differs: `Ok`
/// with the figures if none did, else the shrunk difference.
fn run(
    cases: u32,
    seed: u64,
    shrinks: u32,
    simulator: Simulator,
) -> Result<Figures, TestError<Vec<Op>>> {
    let runtime = runtime();
    let client = client(&runtime);
    let total = Mutex::new(Figures::default());
    runner(cases, seed, shrinks).run(&ops::sequences(LONGEST), |ops| {
        let compared = within(600, "one sequence", compare(&ops, simulator, &client));
        match runtime.block_on(compared) {
            Ok(figures) => {
                total.lock().unwrap().add(figures);
                Ok(())
            }
            Err(divergence) => Err(TestCaseError::fail(divergence.to_string())),
        }
    })?;
    Ok(total.into_inner().unwrap())
}

/// Runs one given sequence against `simulator`.
fn run_one(ops: &[Op], simulator: Simulator) -> Result<Figures, Box<Divergence>> {
    let runtime = runtime();
    let client = client(&runtime);
    runtime.block_on(within(
        600,
        "one sequence",
        compare(ops, simulator, &client),
    ))
}

#[test]
fn postgres_and_the_simulator_agree_after_every_step() {
    let (cases, seed) = (env_or("DIFF_SEQUENCES", 300), seed());
    let began = Instant::now();
    match run(cases, seed, 500, Simulator::Faithful) {
        Ok(figures) => figures.print("differential", began.elapsed().as_secs_f64(), seed),
        Err(e) => panic!("seed {seed} (DIFF_SEED={seed} runs it again): {e}"),
    }
}

/// A holder's lease lapses, a second claim takes the id over, and the
/// first holder, a zombie, finishes: PostgreSQL answers `Stale`.
fn zombie_finish() -> Vec<Op> {
    vec![
        Op::Claim(IDS[0]),
        Op::Tick(side::LEASE_TICKS),
        Op::Claim(IDS[0]),
        Op::Finish(0, Outcome::Ok),
    ]
}

/// Bite: a simulator whose finish ignores its fence applies the zombie's
/// finish, and the comparison says so at that step; the faithful one
/// agrees with PostgreSQL on the same sequence.
#[test]
fn bite_a_finish_without_its_fence_differs_at_the_zombies_finish() {
    let figures = run_one(&zombie_finish(), Simulator::Faithful)
        .unwrap_or_else(|divergence| panic!("{divergence}"));
    assert_eq!(figures.answers.get("finish: Stale (a zombie's)"), Some(&1));
    let divergence = run_one(&zombie_finish(), Simulator::FinishWithoutFence)
        .expect_err("a simulated finish without its fence went unnoticed");
    let stale = |finish| Answer::Finished {
        revoke: false,
        fence: 1,
        finish,
    };
    assert_eq!(
        (divergence.step, divergence.what),
        (3, "answers"),
        "{divergence}"
    );
    assert_eq!(
        divergence.postgres.0,
        stale(async_tasks_recorder_pg::Finish::Stale)
    );
    assert_eq!(
        divergence.simulated.0,
        stale(async_tasks_recorder_pg::Finish::Applied)
    );
}

/// Bite: random sequences, not only the one above, find the simulator
/// whose finish ignores its fence.
#[test]
fn bite_random_sequences_find_a_finish_without_its_fence() {
    let seed = seed();
    match run(200, seed, 40, Simulator::FinishWithoutFence) {
        Ok(figures) => panic!(
            "seed {seed}: {} sequences never noticed a finish without its fence",
            figures.sequences
        ),
        Err(TestError::Fail(why, ops)) => {
            eprintln!("seed {seed}: found in {} operations:\n{why}", ops.len());
            // At a finish, or a drop (whose guard finishes), of the
            // sequence or of those that settle it.
            let first = why.message().lines().next().unwrap_or_default();
            assert!(
                first.contains(", Finish(") || first.contains(", Drop("),
                "{why}"
            );
        }
        Err(e) => panic!("seed {seed}: {e}"),
    }
}

/// The one difference the comparison found, and the simulator now
/// follows: PostgreSQL refuses a negative sweep limit (`LIMIT must not be
/// negative`, SQLSTATE 2201W), where the simulator used to sweep nothing.
/// The generated sequences draw -1 too (`ops::SWEEP_LIMITS`).
#[test]
fn a_negative_sweep_limit_is_refused_on_both() {
    if let Err(divergence) = run_one(&[Op::Sweep(-1)], Simulator::Faithful) {
        panic!("{divergence}");
    }
}
