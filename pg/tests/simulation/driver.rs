//! One simulated run: two replicas' recorders (the crate's own client
//! code) on one simulated database (`async_tasks_recorder_pg::sim`), four
//! workers launching, finishing, dropping and revoking three ids, a
//! sweeper, window faults on a schedule drawn from the seed, and a monitor;
//! then the properties, checked against the database's log of applied
//! writes. Everything runs on a paused current-thread runtime, so a run is
//! a function of its seed: [`run`] twice with one seed gives one trace.

use crate::common::drop_at;
use crate::common::fenced::{Event, FencedSpec, Seen, Timed, linearizable};
use async_tasks_recorder_pg::sim::{Faults, Rng, Server, Which};
use async_tasks_recorder_pg::{
    Attempt, Bounds, Config, Error, Finish, LaunchRefusal, Lease, Mutant, Outcome, PgRecorder,
    Phase, TaskState,
};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_postgres::types::{FromSql, Type};

/// The most ids a run uses (each seed draws 1 to this).
const IDS: i64 = 3;
/// Workers per replica, and operations per worker.
const WORKERS: usize = 2;
const OPERATIONS: usize = 30;
const SWEEP_EVERY: Duration = Duration::from_secs(1);
/// How long any one call may take: a grant's tries within the statement
/// bound, a finish's five rounds with their pauses, each statement within
/// its reply bound. A call past it is a violation, never a hang.
const CALL_BOUND: Duration = Duration::from_secs(20);

/// Which faults a run draws from.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum Class {
    /// Only faults that leave no write in doubt: slow replies within the
    /// bound, frozen row locks, exhausted pools, dropped callers. A row
    /// then held by nobody must be settled before its lease runs out.
    Definite,
    /// Every fault but the clock's: lost requests and replies, late and
    /// slow statements, partitions, crashes, and the above.
    InDoubt,
    /// The above and a database clock stepping forward: `is_lost` is not
    /// checked (it assumes the database clock runs at the client's rate).
    ClockForward,
    /// The above with the clock stepping back instead, against the
    /// assumption of a monotone database clock (P10): leases last longer
    /// than their holders count, and a lapse can be undone. Every property
    /// is checked; the fences keep the ones about rows.
    ClockBackward,
}

/// A defect brought into a run, for a bite.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum Defect {
    /// A wrong answer of the client code.
    Client(Mutant),
    /// The finish statement without its fence guard.
    UnfencedFinish,
    /// Reads of each row as it was before its latest write.
    StaleReads,
}

/// A property a run broke, naming the id.
#[derive(Clone, Debug, Eq, PartialEq, Ord, PartialOrd)]
pub struct Violation {
    pub property: &'static str,
    pub id: i64,
    pub detail: String,
}

/// What a run saw.
#[derive(Debug, Default)]
pub struct Report {
    pub violations: Vec<Violation>,
    pub statements: u64,
    pub answers: usize,
    pub in_doubt: usize,
    pub applied_successes: usize,
    /// Per-id histories checked for linearizability (`None`: the run's
    /// shape has callers that drop calls, whose effects no history holds).
    pub linearizable: Option<usize>,
    pub trace: Vec<String>,
}

impl Report {
    /// Whether `property` was broken.
    pub fn broke(&self, property: &str) -> bool {
        self.violations.iter().any(|v| v.property == property)
    }

    /// The failure message of seed `seed`: violations and the trace's end.
    pub fn show(&self, seed: u64, class: Class) -> String {
        let mut out = format!("seed {seed} ({class:?}):\n");
        for v in &self.violations {
            out += &format!("  {} on id {}: {}\n", v.property, v.id, v.detail);
        }
        out += "trace (last lines):\n";
        for line in self.trace.iter().rev().take(trace_lines()).rev() {
            out += &format!("  {line}\n");
        }
        out
    }
}

/// What a worker shares with the run, and its name in the trace.
struct Worker {
    state: State,
    label: String,
    server: Arc<Server>,
    shape: Shape,
}

/// The shape of a run's workload, drawn from its seed.
#[derive(Clone, Copy, Debug)]
struct Shape {
    /// How many ids the workers share.
    ids: i64,
    /// How long a task body may run: a tenth to twice the class's pace
    /// (its lease, or 6 s for the long-leased `Definite`).
    body: Duration,
    /// The longest pause between a worker's operations.
    pause: Duration,
    /// Of every ten operations, how many are revokes (of eight grants).
    revokes: u64,
    /// Callers drop calls and attempts. Without drops (and without
    /// in-doubt writes) every state change is a recorded call or the
    /// sweeper's, and the history is checked for linearizability.
    drops: bool,
}

impl Shape {
    fn draw(rng: &mut Rng, class: Class) -> Shape {
        Shape {
            ids: 1 + rng.below(IDS as u64) as i64,
            body: class.pace() * [1, 5, 10, 20][rng.below(4) as usize] / 10,
            pause: Duration::from_millis([50, 400][rng.below(2) as usize]),
            revokes: 1 + rng.below(3),
            drops: rng.below(2) == 0,
        }
    }
}

/// A finish or revoke end and what the recorder answered.
#[derive(Clone, Debug)]
struct Answer {
    id: i64,
    fence: u64,
    revoke: bool,
    outcome: Outcome,
    answer: Result<Finish, bool>,
}

impl Answer {
    /// The statement of this answer's finish.
    fn revoke_or_finish(&self) -> Which {
        if self.revoke {
            Which::RevokeEnd
        } else {
            Which::Finish
        }
    }
}

/// An attempt some worker holds.
struct Held {
    id: i64,
    lease: Lease<i64>,
}

/// What the workers share with the monitor.
#[derive(Default)]
struct Shared {
    held: BTreeMap<u64, Held>,
    /// Fences whose finish a caller is awaiting.
    finishing: BTreeSet<u64>,
    answers: Vec<Answer>,
    /// Every call with a definite answer, stamped at its invocation and
    /// return, by id: the history the linearizability check reads.
    history: Vec<(i64, Timed<u64>)>,
    /// The stamps' counter: each reading is distinct.
    clock: u64,
    violations: Vec<Violation>,
}

type State = Arc<Mutex<Shared>>;

fn lock(state: &State) -> std::sync::MutexGuard<'_, Shared> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

/// The next stamp.
fn stamp(state: &State) -> u64 {
    let mut s = lock(state);
    s.clock += 1;
    s.clock
}

/// Records `event` on `id`, invoked at `invoked`, returned now.
fn record(state: &State, id: i64, invoked: u64, event: Event) {
    let returned = stamp(state);
    let seen = Seen {
        shifted: false,
        event,
    };
    lock(state)
        .history
        .push((id, Timed::new(seen, invoked, returned)));
}

fn violation(state: &State, property: &'static str, id: i64, detail: String) {
    let mut s = lock(state);
    let v = Violation {
        property,
        id,
        detail,
    };
    if !s.violations.contains(&v) {
        s.violations.push(v);
    }
}

/// The id of a binary key (the simulated table keeps ids as their
/// big-endian `bigint`).
fn id_of(key: &[u8]) -> i64 {
    i64::from_sql(&Type::INT8, key).unwrap_or(-1)
}

/// `call` within [`CALL_BOUND`], or a violation naming `id`.
async fn bounded<T>(
    state: &State,
    what: &str,
    id: i64,
    call: impl Future<Output = T>,
) -> Option<T> {
    match tokio::time::timeout(CALL_BOUND, call).await {
        Ok(done) => Some(done),
        Err(_) => {
            violation(
                state,
                "call_bounded",
                id,
                format!("{what} still running after {CALL_BOUND:?}"),
            );
            None
        }
    }
}

impl Class {
    /// The lease and statement bound of the class's recorders. A long
    /// lease where a dropped call's guard must settle its attempt before the
    /// lease runs out, whatever the faults (its five rounds take 14 s at
    /// most; a lease renewed every 10 s has 20 s left); a short one, against
    /// a short statement bound, where leases should lapse while their
    /// holders still run and finishes still resolve.
    fn timing(self) -> (Duration, Duration) {
        match self {
            Class::Definite => (Duration::from_secs(30), Duration::from_secs(1)),
            Class::InDoubt | Class::ClockForward | Class::ClockBackward => {
                (Duration::from_millis(1_500), Duration::from_millis(300))
            }
        }
    }

    /// The length task bodies are drawn against.
    fn pace(self) -> Duration {
        match self {
            Class::Definite => Duration::from_secs(6),
            _ => self.timing().0,
        }
    }

    fn settings(self) -> Config {
        let (lease, statement) = self.timing();
        Config {
            lease,
            pool_size: 4,
            renewal_pool_size: 1,
            bounds: Bounds {
                statement: Some(statement),
                ..Bounds::default()
            },
            ..Config::default()
        }
    }

    /// The statement faults of the class.
    fn faults(self) -> Faults {
        match self {
            // A slow reply and a lock wait (up to half the statement
            // bound) together stay within the client's reply bound:
            // nothing in doubt.
            Class::Definite => Faults {
                slow: 60,
                slow_by: Duration::from_millis(500),
                ..Faults::NONE
            },
            Class::InDoubt | Class::ClockForward | Class::ClockBackward => Faults {
                reset_before: 40,
                reset_after: 40,
                silent_before: 15,
                silent_after: 15,
                late: 50,
                late_by: Duration::from_secs(3),
                slow: 80,
                slow_by: Duration::from_millis(400),
            },
        }
    }
}

/// Runs seed `seed` of `class`, with `mutant` turned on in both replicas
/// with `defect`, if any, brought in.
pub fn run(seed: u64, class: Class, defect: Option<Defect>) -> Report {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a paused runtime");
    runtime.block_on(simulate(seed, class, defect))
}

async fn simulate(seed: u64, class: Class, defect: Option<Defect>) -> Report {
    let server = Server::new(seed, Type::INT8, class.faults());
    let replicas: Vec<PgRecorder<i64>> = (0..2)
        .map(|_| PgRecorder::simulated(&server, class.settings()).expect("a simulated recorder"))
        .collect();
    match defect {
        Some(Defect::Client(mutant)) => replicas.iter().for_each(|r| r.mutate(mutant)),
        Some(Defect::UnfencedFinish) => server.drop_finish_fence(),
        Some(Defect::StaleReads) => server.serve_stale_reads(),
        None => {}
    }
    let sweeper = replicas[0]
        .sweep_every(SWEEP_EVERY, NonZeroU32::new(16).unwrap())
        .expect("a sweeper");
    let state: State = Arc::default();
    let mut rng = Rng::new(seed ^ 0x5eed);

    let shape = Shape::draw(&mut rng, class);
    server.note(format_args!("{shape:?}"));
    let mut workers = Vec::new();
    for (r, recorder) in replicas.iter().enumerate() {
        for w in 0..WORKERS {
            let worker_seed = rng.next_u64();
            let worker = Worker {
                state: state.clone(),
                label: format!("r{r}w{w}"),
                server: server.clone(),
                shape,
            };
            let recorder = recorder.clone();
            workers.push(tokio::spawn(async move {
                work(recorder, worker, Rng::new(worker_seed)).await
            }));
        }
    }
    let stop = tokio_util::sync::CancellationToken::new();
    let faulting = tokio::spawn(inject(
        server.clone(),
        class,
        Rng::new(rng.next_u64()),
        stop.clone(),
    ));
    let monitor = tokio::spawn(watch(server.clone(), state.clone(), class, stop.clone()));
    for worker in workers {
        let _ = worker.await;
    }
    stop.cancel();
    let _ = faulting.await;
    let _ = monitor.await;

    // Quiet: no fault any more. Once the last late statement has landed,
    // every lease runs out and the sweep comes: within a lease, a sweep
    // period and the sweep's own statement.
    server.heal();
    let (lease, statement) = class.timing();
    let last_landing = class.faults().late_by;
    // A clock stepped back lengthens every lease running then.
    let stepped_back = Duration::from_micros((-server.clock_offset()).max(0) as u64);
    let quiet = last_landing + stepped_back + lease + SWEEP_EVERY + statement * 3;
    tokio::time::sleep(quiet).await;
    drop(sweeper);
    let table = server.table();
    let state = Arc::try_unwrap(state)
        .map(|m| m.into_inner().unwrap_or_else(|p| p.into_inner()))
        .unwrap_or_else(|shared| std::mem::take(&mut *lock(&shared)));
    let mut report = Report {
        violations: state.violations,
        statements: server.statements(),
        answers: state.answers.len(),
        in_doubt: state
            .answers
            .iter()
            .filter(|a| a.answer == Err(true))
            .count(),
        ..Report::default()
    };
    check_rows(&table, &state.answers, &mut report);
    if class == Class::Definite && !shape.drops {
        report.linearizable = Some(check_history(&state.history, &mut report));
    }
    report.violations.sort();
    report.trace = server.trace();
    report
}

/// One worker: operations on random ids, each call bounded, some of them
/// dropped by their caller at a random await point.
async fn work(recorder: PgRecorder<i64>, worker: Worker, mut rng: Rng) {
    let Worker { state, shape, .. } = &worker;
    for _ in 0..OPERATIONS {
        let id = rng.below(shape.ids as u64) as i64;
        let pause = rng.below(shape.pause.as_millis() as u64);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        let op = rng.below(10);
        match op {
            _ if op < 8 - shape.revokes => {
                let revoke = false;
                let claim = async {
                    let refused = |why: LaunchRefusal| Event::Launch(Err(why.state()));
                    recorder.claim(id).await.map(|r| r.map_err(refused))
                };
                attempt(&worker, &mut rng, id, revoke, claim).await
            }
            _ if op < 8 => {
                let revoke = true;
                let claim = async {
                    let refused = |why| Event::RevokeBegin(Err(why));
                    recorder.revoke_begin(id).await.map(|r| r.map_err(refused))
                };
                attempt(&worker, &mut rng, id, revoke, claim).await
            }
            8 => {
                let invoked = stamp(state);
                if let Some(Ok(now)) = bounded(state, "query", id, recorder.query(&id)).await {
                    record(state, id, invoked, Event::Query(now));
                }
            }
            _ => {
                let listed = recorder.list_page(TaskState::Failed, None, 10);
                let _ = bounded(state, "list_page", id, listed).await;
            }
        }
    }
}

/// A claim or revoke begin (`grant`), then the attempt's life: a task body,
/// and a finish, a drop, or a finish dropped by its caller.
async fn attempt(
    worker: &Worker,
    rng: &mut Rng,
    id: i64,
    revoke: bool,
    grant: impl Future<Output = Result<Result<Attempt<i64>, Event>, Error>>,
) {
    let Worker {
        state,
        label,
        server,
        shape,
    } = worker;
    let what = if revoke { "revoke begin" } else { "claim" };
    // One call in eight is dropped by its caller at a random await point.
    let invoked = stamp(state);
    let granted = if shape.drops && rng.below(8) == 0 {
        let k = rng.below(3);
        server.note(format_args!(
            "{label}: {what} of {id}, dropped at suspension {k}"
        ));
        match bounded(state, what, id, drop_at(k, grant)).await {
            Some(Some(granted)) => granted,
            _ => return,
        }
    } else {
        match bounded(state, what, id, grant).await {
            Some(granted) => granted,
            None => return,
        }
    };
    let attempt = match granted {
        Ok(Ok(attempt)) => attempt,
        Ok(Err(refusal)) => return record(state, id, invoked, refusal),
        // A definite error changed nothing; an in-doubt one is no history.
        Err(_) => return,
    };
    let fence = attempt.lease().fence();
    let granted = match revoke {
        true => Event::RevokeBegin(Ok(fence)),
        false => Event::Launch(Ok((fence, attempt.lease().epoch()))),
    };
    record(state, id, invoked, granted);
    server.note(format_args!("{label}: holds {id} with fence {fence}"));
    lock(state).held.insert(
        fence,
        Held {
            id,
            lease: attempt.lease().clone(),
        },
    );
    tokio::time::sleep(Duration::from_millis(
        rng.below(shape.body.as_millis() as u64),
    ))
    .await;
    let outcome = if rng.below(4) == 0 {
        Outcome::Err
    } else {
        Outcome::Ok
    };
    let release = |state: &State| {
        lock(state).held.remove(&fence);
    };
    match if shape.drops { rng.below(10) } else { 9 } {
        0 => {
            server.note(format_args!("{label}: drops the attempt of {id} ({fence})"));
            release(state);
            drop(attempt);
        }
        1 => {
            let k = rng.below(3);
            server.note(format_args!(
                "{label}: finish of {id} ({fence}) dropped at {k}"
            ));
            release(state);
            let _ = bounded(state, "finish", id, drop_at(k, attempt.finish(outcome))).await;
        }
        _ => {
            release(state);
            lock(state).finishing.insert(fence);
            let invoked = stamp(state);
            let answer = bounded(state, "finish", id, attempt.finish(outcome)).await;
            lock(state).finishing.remove(&fence);
            let Some(answer) = answer else {
                return;
            };
            if let Ok(finish) = answer {
                let event = match revoke {
                    true => Event::RevokeEnd(fence, outcome, finish),
                    false => Event::Finish(fence, outcome, finish),
                };
                record(state, id, invoked, event);
            }
            server.note(format_args!(
                "{label}: finish {outcome:?} of {id} ({fence}): {answer:?}"
            ));
            let answer = answer.map_err(|e| e.is_in_doubt());
            lock(state).answers.push(Answer {
                id,
                fence,
                revoke,
                outcome,
                answer,
            });
        }
    }
}

/// Window faults on a schedule drawn from `rng`, until `stop`.
async fn inject(
    server: Arc<Server>,
    class: Class,
    mut rng: Rng,
    stop: tokio_util::sync::CancellationToken,
) {
    loop {
        let pause = Duration::from_millis(500 + rng.below(2_500));
        tokio::select! {
            biased;
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(pause) => {}
        }
        let ms = |rng: &mut Rng, lo: u64, hi: u64| Duration::from_millis(lo + rng.below(hi - lo));
        match (class, rng.below(8)) {
            (_, 0) => server.exhaust_pools(ms(&mut rng, 200, 2_000)),
            (_, 1) => {
                let id = rng.below(IDS as u64) as i64;
                server.lock_row(id.to_be_bytes().to_vec(), ms(&mut rng, 100, 1_500));
            }
            (Class::Definite, _) => {}
            (_, 2) => server.silence(ms(&mut rng, 300, 8_000)),
            (_, 5 | 6) => server.cut_off(rng.below(2) as usize, ms(&mut rng, 300, 4_000)),
            (_, 3) => server.crash(ms(&mut rng, 100, 1_000)),
            (Class::ClockForward, 4) => {
                server.step_clock(ms(&mut rng, 100, 4_000).as_micros() as i64)
            }
            (Class::ClockBackward, 4) => {
                server.step_clock(-(ms(&mut rng, 100, 4_000).as_micros() as i64))
            }
            _ => {}
        }
    }
}

/// Every 50 ms until `stop`: `is_lost` of every held attempt whose
/// database lease has lapsed, and (without in-doubt faults) rows held by
/// nobody.
async fn watch(
    server: Arc<Server>,
    state: State,
    class: Class,
    stop: tokio_util::sync::CancellationToken,
) {
    loop {
        tokio::select! {
            biased;
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
        let rows = server.rows();
        let now = server.now();
        let s = lock(&state);
        let mut lost = Vec::new();
        for (&fence, held) in &s.held {
            let Some(row) = rows.get(held.id.to_be_bytes().as_slice()) else {
                continue;
            };
            let leased = matches!(row.phase, Phase::Working | Phase::Revoking);
            let lapsed =
                row.fence == fence && leased && row.lease_until.is_some_and(|u| u + 1_000 <= now);
            let taken = row.fence > fence;
            if class != Class::ClockForward && (lapsed || taken) && !held.lease.is_lost() {
                lost.push((held.id, fence, lapsed));
            }
        }
        let mut orphans = Vec::new();
        for (key, row) in &rows {
            let leased = matches!(row.phase, Phase::Working | Phase::Revoking);
            // A finish that answered an error leaves its row to the lease.
            let answered_error = s
                .answers
                .iter()
                .any(|a| a.fence == row.fence && a.answer.is_err());
            let nobody = !s.held.contains_key(&row.fence) && !s.finishing.contains(&row.fence);
            let ran_out = row.lease_until.is_some_and(|until| until <= now);
            if class == Class::Definite && leased && nobody && !answered_error && ran_out {
                orphans.push((id_of(key), row.fence));
            }
        }
        drop(s);
        for (id, fence, lapsed) in lost {
            let why = if lapsed { "lapsed" } else { "taken over" };
            violation(
                &state,
                "is_lost_when_lapsed",
                id,
                format!("fence {fence}: database lease {why}, is_lost() false"),
            );
        }
        for (id, fence) in orphans {
            violation(
                &state,
                "dropped_call_settles",
                id,
                format!("fence {fence}, held by nobody, ran out its lease"),
            );
        }
    }
}

/// The properties checked against the final rows and the log of applied
/// writes.
fn check_rows(
    table: &async_tasks_recorder_pg::sim::Table,
    answers: &[Answer],
    report: &mut Report,
) {
    let mut add = |property: &'static str, id: i64, detail: String| {
        report.violations.push(Violation {
            property,
            id,
            detail,
        });
    };
    // Successes per (id, epoch): the fenced side effect commits with them.
    let mut successes: BTreeMap<(i64, u64), Vec<u64>> = BTreeMap::new();
    let mut last_grant: BTreeMap<i64, u64> = BTreeMap::new();
    for applied in table.applied() {
        let id = id_of(&applied.key);
        match applied.which {
            Which::Finish if applied.row.phase == Phase::Success => {
                successes
                    .entry((id, applied.row.epoch))
                    .or_default()
                    .push(applied.fence);
            }
            Which::Claim | Which::ClaimNew | Which::RevokeBegin => {
                if let Some(&before) = last_grant.get(&id)
                    && applied.fence <= before
                {
                    add(
                        "fences_rise",
                        id,
                        format!("fence {} granted after {before}", applied.fence),
                    );
                }
                last_grant.insert(id, applied.fence);
            }
            _ => {}
        }
    }
    report.applied_successes = successes.values().map(Vec::len).sum();
    for ((id, epoch), fences) in &successes {
        if fences.len() > 1 {
            add(
                "one_success_per_epoch",
                *id,
                format!("epoch {epoch}: successes by fences {fences:?}"),
            );
        }
    }
    for (key, row) in table.rows() {
        let id = id_of(key);
        if row.phase == Phase::Success && !successes.contains_key(&(id, row.epoch)) {
            add(
                "success_has_its_effect",
                id,
                format!("Success in epoch {} without a success applied", row.epoch),
            );
        }
        if matches!(row.phase, Phase::Working | Phase::Revoking) {
            add(
                "no_working_past_lease_and_sweep",
                id,
                format!(
                    "{:?} with fence {} after the quiet period",
                    row.phase, row.fence
                ),
            );
        }
    }
    for a in answers {
        let reached = ending_reached(table, a);
        let own = a.revoke_or_finish();
        let sent_applied = table
            .applied()
            .iter()
            .any(|e| e.key == a.id.to_be_bytes() && e.which == own && e.fence == a.fence);
        let wrong = match a.answer {
            Ok(Finish::Applied) => !reached,
            Ok(Finish::Stale) => sent_applied,
            Err(_) => false,
        };
        if wrong {
            add(
                "answer_agrees_with_rows",
                a.id,
                format!(
                    "{} {:?} by fence {} answered {:?}; the row reached its ending state: \
                     {reached}; a send of it applied: {sent_applied}",
                    if a.revoke { "revoke end" } else { "finish" },
                    a.outcome,
                    a.fence,
                    a.answer
                ),
            );
        }
    }
}

/// Checks each id's history for linearizability against
/// `spec::fenced_step`, leases lapsing and the sweeper expiring them at any
/// point; returns how many histories were checked.
fn check_history(history: &[(i64, Timed<u64>)], report: &mut Report) -> usize {
    let mut per_id: BTreeMap<i64, Vec<Timed<u64>>> = BTreeMap::new();
    for (id, event) in history {
        per_id.entry(*id).or_default().push(event.clone());
    }
    let spec = FencedSpec {
        hidden_sweeps: true,
    };
    for (id, events) in &per_id {
        if let Err(why) = linearizable(&spec, events) {
            report.violations.push(Violation {
                property: "linearizable",
                id: *id,
                detail: why,
            });
        }
    }
    per_id.len()
}

/// Whether the row of `a`'s id ever held `a`'s fence in the state its
/// finish leaves (written by the finish, or by the sweep's equivalent).
fn ending_reached(table: &async_tasks_recorder_pg::sim::Table, a: &Answer) -> bool {
    let key = a.id.to_be_bytes();
    table.applied().iter().any(|e| {
        let row = &e.row;
        e.key == key
            && row.fence == a.fence
            && match (a.revoke, a.outcome) {
                (false, Outcome::Ok) => {
                    row.phase == Phase::Success && row.success_fence == Some(a.fence)
                }
                (false, Outcome::Err) => row.phase == Phase::Failed,
                (true, Outcome::Ok) => row.phase == Phase::NotFound,
                (true, Outcome::Err) => row.phase == Phase::Success,
            }
    })
}

/// Trace lines a failure shows: `SIM_TRACE_LINES`, default 60.
fn trace_lines() -> usize {
    std::env::var("SIM_TRACE_LINES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60)
}
