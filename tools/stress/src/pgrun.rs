//! The run on PostgreSQL (`--backend postgres`): `--processes` worker
//! processes (this binary, re-executed with a hidden `--worker N`) share one
//! database while the coordinator injects faults, then the coordinator
//! audits what the database holds.
//!
//! Every successful task writes its side effect, a ledger row
//! `(id, epoch, fence)`, in the same transaction as its fenced finish
//! ([`Attempt::finish_in`]) and commits only if the finish was applied.
//! The ledger's key is `(id, fence)`, not `(id, epoch)`: a unique
//! `(id, epoch)` would turn a zombie's double side effect into a constraint
//! error and hide it from the audit; here only the fence protects it.
//!
//! A worker prints one line per acknowledged success (`ok id epoch fence`),
//! per finish answered `Stale` (`stale id fence elapsed_ms`), and its
//! counters and latencies every second (`stats {json}`), so a process
//! killed with -9 loses at most a second of counters and no acknowledgement.
//!
//! Faults (each a flag): kill -9 of a worker process and a fresh one in its
//! place; SIGSTOP of a worker process for three leases, then SIGCONT (a
//! zombie); `pg_terminate_backend` on every worker connection; `pg_ctl stop
//! -m immediate` and a restart of the database (own cluster only).

use crate::options::{Options, Sabotage};
use async_tasks_recorder::sync::lock;
use async_tasks_recorder_pg::cluster::Cluster;
use async_tasks_recorder_pg::{
    Attempt, Config as PgConfig, Finish, KnownBad, Outcome, PgRecorder, Phase, Statements,
    TaskState, end_idle_transactions, phase_of, state_codes,
};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader, Write as _};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_postgres::{Client, NoTls};

/// The recorder's table.
const TASKS: &str = "stress_tasks";
/// The `application_name` of worker connections: the connections the
/// `pg_terminate_backend` fault ends.
const WORKER_APP: &str = "stress-worker";
/// Default length of a postgres run without `--duration`.
const DEFAULT_SECS: f64 = 20.0;
/// Ids named per violation.
const IDS_SHOWN: usize = 20;
/// Most ids the audit reads one by one.
const POINT_QUERIES: u64 = 20_000;

/// Entry point of `--backend postgres`: the coordinator, or a worker.
pub fn main(options: Options) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = match options.worker {
        Some(slot) => runtime.block_on(worker(options, slot)),
        None => coordinator(&runtime, options),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("postgres run: {error}");
            ExitCode::FAILURE
        }
    }
}

fn config(url: &str, app: &str) -> Result<tokio_postgres::Config, String> {
    let mut config: tokio_postgres::Config = url
        .parse()
        .map_err(|e| format!("bad --database-url {url:?}: {e}"))?;
    config
        .application_name(app)
        .connect_timeout(Duration::from_secs(2));
    Ok(config)
}

/// The connection of the side effect's transaction. A worker frozen
/// between its fenced finish and the commit holds the id's row lock; the
/// server ends such a session once it has idled in its transaction for a
/// lease, so the id is taken over instead of stalling every competitor.
fn ledger_config(url: &str, lease: Duration) -> Result<tokio_postgres::Config, String> {
    let mut config = config(url, WORKER_APP)?;
    end_idle_transactions(&mut config, lease);
    Ok(config)
}

async fn connect(config: &tokio_postgres::Config) -> Result<Client, String> {
    let (client, connection) = config.connect(NoTls).await.map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// The statements, made known-bad as `sabotage` asks.
fn statements(sabotage: Option<Sabotage>) -> Result<Statements, String> {
    let sql = Statements::new(TASKS, "bigint");
    Ok(match sabotage {
        None => sql,
        Some(Sabotage::Unfenced) => sql.known_bad(KnownBad::FinishWithoutFenceInAnyState),
        Some(Sabotage::ClientClock) => sql.known_bad(KnownBad::ClaimByClientClock),
    })
}

fn recorder(
    url: &str,
    app: &str,
    lease: Duration,
    sabotage: Option<Sabotage>,
) -> Result<PgRecorder<i64>, String> {
    let settings = PgConfig {
        lease,
        pool_size: 16,
        ..PgConfig::default()
    };
    PgRecorder::with_statements(config(url, app)?, statements(sabotage)?, settings)
        .map_err(|e| e.to_string())
}

/// Whether any fault flag was given.
pub fn faults_asked(options: &Options) -> bool {
    options.kill_every.is_some()
        || options.zombie_every.is_some()
        || options.terminate_every.is_some()
        || options.crash_every.is_some()
        || options.sabotage.is_some()
}

/// A recorder on a fresh table of the given database or of a new
/// throwaway cluster (returned, so that it lives as long as the run).
pub async fn fresh_recorder(
    options: &Options,
) -> Result<(Option<Cluster>, PgRecorder<i64>), String> {
    let cluster = match &options.database_url {
        Some(_) => None,
        None => Some(Cluster::start().map_err(|e| e.to_string())?),
    };
    let url = match (&options.database_url, &cluster) {
        (Some(url), _) => url.clone(),
        (None, Some(cluster)) => cluster.conninfo("postgres"),
        (None, None) => return Err("no database".into()),
    };
    let client = connect(&config(&url, "stress-coordinator")?).await?;
    client
        .batch_execute(
            "DROP TABLE IF EXISTS stress_tasks; DROP SEQUENCE IF EXISTS stress_tasks_fence;",
        )
        .await
        .map_err(|e| e.to_string())?;
    let lease = Duration::from_millis(options.lease_ms);
    let recorder = recorder(&url, "stress-in-process", lease, None)?;
    recorder.install().await.map_err(|e| e.to_string())?;
    Ok((cluster, recorder))
}

// ---------------------------------------------------------------- worker

/// Counters and latencies of one operation since the last report.
struct OpStats {
    count: u64,
    errors: u64,
    micros: Histogram<u64>,
}

impl OpStats {
    fn new() -> Self {
        OpStats {
            count: 0,
            errors: 0,
            micros: Histogram::new_with_bounds(1, 600_000_000, 2).expect("valid bounds"),
        }
    }
}

#[derive(Default)]
struct Counters {
    ops: BTreeMap<&'static str, OpStats>,
    successes: u64,
    failures: u64,
    refused: u64,
    stale: u64,
    rejected_writes: u64,
    reconnects: u64,
    revokes: u64,
    first_error: Option<String>,
}

impl Counters {
    fn record(&mut self, op: &'static str, began: Instant, ok: bool) {
        let stats = self.ops.entry(op).or_insert_with(OpStats::new);
        stats.count += 1;
        if !ok {
            stats.errors += 1;
        }
        let micros = u64::try_from(began.elapsed().as_micros()).unwrap_or(u64::MAX);
        stats.micros.saturating_record(micros.max(1));
    }

    fn error(&mut self, error: impl std::fmt::Display) {
        if self.first_error.is_none() {
            self.first_error = Some(error.to_string());
        }
    }

    /// The counters as one line, then zeroed.
    fn take_line(&mut self, slot: u64) -> String {
        let ops: serde_json::Map<String, Value> = self
            .ops
            .iter()
            .map(|(op, s)| {
                let hist: Vec<(u64, u64)> = s
                    .micros
                    .iter_recorded()
                    .map(|v| (v.value_iterated_to(), v.count_at_value()))
                    .collect();
                (
                    op.to_string(),
                    json!({"n": s.count, "errors": s.errors, "hist": hist}),
                )
            })
            .collect();
        let line = json!({
            "slot": slot,
            "ops": ops,
            "successes": self.successes,
            "failures": self.failures,
            "refused": self.refused,
            "stale": self.stale,
            "rejected_writes": self.rejected_writes,
            "reconnects": self.reconnects,
            "revokes": self.revokes,
            "first_error": self.first_error.take(),
        });
        let first = self.first_error.clone();
        *self = Counters::default();
        self.first_error = first;
        format!("stats {line}")
    }
}

struct Worker {
    slot: u64,
    recorder: PgRecorder<i64>,
    ledger_config: tokio_postgres::Config,
    ids: u64,
    fail_rate: f64,
    deadline: Instant,
    ops_per_loop: u64,
    counters: Mutex<Counters>,
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

async fn worker(options: Options, slot: u64) -> Result<ExitCode, String> {
    let url = options
        .database_url
        .clone()
        .ok_or("a worker needs --database-url")?;
    let lease = Duration::from_millis(options.lease_ms);
    let recorder = recorder(&url, WORKER_APP, lease, options.sabotage)?;
    if options.sabotage == Some(Sabotage::ClientClock) && slot == 0 {
        recorder.skew_client_clock(lease * 2);
    }
    let loops = options.workers.max(1);
    let total_loops = loops * options.processes;
    let worker = Arc::new(Worker {
        slot,
        recorder,
        ledger_config: ledger_config(&url, lease)?,
        ids: options.ids,
        fail_rate: options.fail_rate,
        deadline: Instant::now()
            + Duration::from_secs_f64(options.duration.unwrap_or(DEFAULT_SECS)),
        ops_per_loop: (options.launches / total_loops).max(1),
        counters: Mutex::new(Counters::default()),
    });
    let reporter = {
        let worker = worker.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let line = lock(&worker.counters).take_line(worker.slot);
                say(&line);
            }
        })
    };
    let mut loops_running = Vec::new();
    for n in 0..loops {
        let seed = options.seed ^ (slot << 32) ^ n ^ u64::from(std::process::id());
        loops_running.push(tokio::spawn(work_loop(worker.clone(), seed)));
    }
    for running in loops_running {
        let _ = running.await;
    }
    reporter.abort();
    // Let the background finishes of dropped attempts go out.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let line = lock(&worker.counters).take_line(slot);
    say(&line);
    Ok(ExitCode::SUCCESS)
}

/// One loop of operations, bounded by the deadline and a count.
async fn work_loop(w: Arc<Worker>, seed: u64) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut ledger: Option<Client> = None;
    let mut working: Vec<i64> = Vec::new();
    let backoff = Duration::from_millis(50);
    for _ in 0..w.ops_per_loop {
        if Instant::now() >= w.deadline {
            break;
        }
        let random_id = rng.u64(0..w.ids) as i64;
        let roll = rng.f64();
        let began = Instant::now();
        let ok = if roll < 0.03 {
            let swept = w.recorder.sweep(100).await;
            record(&w, "sweep", began, swept.map(|_| ()))
        } else if roll < 0.10 {
            let listed = w.recorder.list(TaskState::Working).await;
            let result = listed.map(|ids| working = ids);
            record(&w, "list", began, result)
        } else if roll < 0.20 {
            let read = w.recorder.query(&random_id).await;
            record(&w, "query", began, read.map(|_| ()))
        } else if roll < 0.26 {
            revoke(&w, &mut rng, random_id).await
        } else {
            // Prefer ids listed as working: lapsed ones are taken over.
            let id = match working.pop() {
                Some(id) if rng.f64() < 0.5 => id,
                _ => random_id,
            };
            launch(&w, &mut rng, &mut ledger, id).await
        };
        if !ok {
            tokio::time::sleep(backoff).await;
        }
    }
}

fn record<E: std::fmt::Display>(
    w: &Worker,
    op: &'static str,
    began: Instant,
    result: Result<(), E>,
) -> bool {
    let mut counters = lock(&w.counters);
    counters.record(op, began, result.is_ok());
    if let Err(e) = &result {
        counters.error(format!("{op}: {e}"));
    }
    result.is_ok()
}

async fn revoke(w: &Worker, rng: &mut fastrand::Rng, id: i64) -> bool {
    let fail = rng.f64() < 0.1;
    let began = Instant::now();
    let result = w
        .recorder
        .revoke(id, |_| async move { if fail { Err(()) } else { Ok(()) } })
        .await;
    match result {
        Ok((_, Ok(_))) => {
            lock(&w.counters).revokes += 1;
            record::<String>(w, "revoke", began, Ok(()))
        }
        Ok((_, Err(e))) => record(w, "revoke", began, Err(e)),
        Err(async_tasks_recorder_pg::Refused::Error(e)) => record(w, "revoke", began, Err(e)),
        Err(_) => record::<String>(w, "revoke", began, Ok(())),
    }
}

async fn launch(w: &Worker, rng: &mut fastrand::Rng, ledger: &mut Option<Client>, id: i64) -> bool {
    let began = Instant::now();
    let attempt = match w.recorder.claim(id).await {
        Err(e) => return record(w, "claim", began, Err(e)),
        Ok(Err(_)) => {
            lock(&w.counters).refused += 1;
            return record::<String>(w, "claim", began, Ok(()));
        }
        Ok(Ok(attempt)) => {
            record::<String>(w, "claim", began, Ok(()));
            attempt
        }
    };
    // The task's work: a SIGSTOP is most likely to land here.
    tokio::time::sleep(Duration::from_millis(rng.u64(5..=50))).await;
    let fail = rng.f64() < w.fail_rate;
    let (epoch, fence) = (attempt.lease().epoch(), attempt.lease().fence());
    let finishing = Instant::now();
    let finished = if fail {
        attempt
            .finish(Outcome::Err)
            .await
            .map_err(|e| e.to_string())
    } else {
        fenced_success(w, ledger, attempt, id).await
    };
    let elapsed = began.elapsed();
    match finished {
        Ok(Finish::Applied) => {
            let mut counters = lock(&w.counters);
            if fail {
                counters.failures += 1;
            } else {
                counters.successes += 1;
            }
            counters.record("finish", finishing, true);
            drop(counters);
            if !fail {
                say(&format!("ok {id} {epoch} {fence}"));
            }
            true
        }
        Ok(Finish::Stale) => {
            let mut counters = lock(&w.counters);
            counters.stale += 1;
            if !fail {
                counters.rejected_writes += 1;
            }
            counters.record("finish", finishing, true);
            drop(counters);
            // A failure's finish that was in doubt reads `Stale` once the
            // row has moved on, lease or no lease: only a success's `Stale`
            // says that its live lease was taken.
            let tag = if fail { "stale-err" } else { "stale" };
            say(&format!("{tag} {id} {fence} {}", elapsed.as_millis()));
            true
        }
        Err(e) => record(w, "finish", finishing, Err(e)),
    }
}

/// The side effect and the fenced finish in one transaction, committed
/// only if the finish was applied.
async fn fenced_success(
    w: &Worker,
    ledger: &mut Option<Client>,
    attempt: Attempt<i64>,
    id: i64,
) -> Result<Finish, String> {
    if ledger.as_ref().is_none_or(|c| c.is_closed()) {
        // A reconnect replaces a connection that broke (not the first one).
        let replacing = ledger.is_some();
        let fresh = connect(&w.ledger_config).await?;
        *ledger = Some(fresh);
        if replacing {
            lock(&w.counters).reconnects += 1;
        }
    }
    let client = ledger.as_mut().ok_or("no ledger connection")?;
    let (epoch, fence) = (
        attempt.lease().epoch() as i64,
        attempt.lease().fence() as i64,
    );
    let slot = w.slot as i64;
    let tx = client.transaction().await.map_err(|e| e.to_string())?;
    tx.execute(
        "INSERT INTO stress_ledger (id, epoch, fence, process) VALUES ($1, $2, $3, $4)",
        &[&id, &epoch, &fence, &slot],
    )
    .await
    .map_err(|e| e.to_string())?;
    let finish = attempt
        .finish_in(&tx, Outcome::Ok)
        .await
        .map_err(|e| e.to_string())?;
    match finish {
        Finish::Applied => tx.commit().await.map_err(|e| e.to_string())?,
        Finish::Stale => tx.rollback().await.map_err(|e| e.to_string())?,
    }
    Ok(finish)
}

// ----------------------------------------------------------- coordinator

/// A line from a worker process, with the time it arrived.
struct Line {
    slot: usize,
    generation: u64,
    at: Instant,
    text: String,
}

struct Proc {
    child: Child,
    generation: u64,
}

fn spawn_worker(
    options: &Options,
    url: &str,
    slot: usize,
    generation: u64,
    seconds: f64,
    lines: &mpsc::Sender<Line>,
) -> Result<Proc, String> {
    let exe = std::env::current_exe().map_err(|e| format!("own executable: {e}"))?;
    let mut command = Command::new(exe);
    command.args([
        "--backend",
        "postgres",
        "--worker",
        &slot.to_string(),
        "--database-url",
        url,
        "--processes",
        &options.processes.to_string(),
        "--ids",
        &options.ids.to_string(),
        "--workers",
        &options.workers.to_string(),
        "--launches",
        &options.launches.to_string(),
        "--fail-rate",
        &options.fail_rate.to_string(),
        "--lease-ms",
        &options.lease_ms.to_string(),
        "--seed",
        &(options.seed.wrapping_add(generation)).to_string(),
        "--duration",
        &format!("{:.3}", seconds.max(0.001)),
    ]);
    if let Some(sabotage) = options.sabotage {
        command.args([
            "--sabotage",
            match sabotage {
                Sabotage::Unfenced => "unfenced",
                Sabotage::ClientClock => "client-clock",
            },
        ]);
    }
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("start a worker process: {e}"))?;
    let stdout = child.stdout.take().ok_or("worker without stdout")?;
    let sender = lines.clone();
    std::thread::spawn(move || {
        for text in BufReader::new(stdout).lines() {
            let Ok(text) = text else { break };
            let line = Line {
                slot,
                generation,
                at: Instant::now(),
                text,
            };
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    Ok(Proc { child, generation })
}

/// Merged counters of every worker process.
#[derive(Default)]
struct Totals {
    ops: BTreeMap<String, (u64, u64, Option<Histogram<u64>>)>,
    counters: BTreeMap<String, u64>,
    first_error: Option<String>,
    acked: Vec<(i64, i64, i64, Instant)>,
    /// (slot, generation, id, ms since the claim, arrival, a success's finish).
    stale: Vec<(usize, u64, i64, u64, Instant, bool)>,
}

impl Totals {
    fn take(&mut self, line: &Line) {
        let mut words = line.text.split(' ');
        match words.next() {
            Some("ok") => {
                let n: Vec<i64> = words.filter_map(|w| w.parse().ok()).collect();
                if let [id, epoch, fence] = n[..] {
                    self.acked.push((id, epoch, fence, line.at));
                }
            }
            Some(tag @ ("stale" | "stale-err")) => {
                let n: Vec<u64> = words.filter_map(|w| w.parse().ok()).collect();
                if let [id, _fence, ms] = n[..] {
                    self.stale.push((
                        line.slot,
                        line.generation,
                        id as i64,
                        ms,
                        line.at,
                        tag == "stale",
                    ));
                }
            }
            Some("stats") => {
                let Ok(v) = serde_json::from_str::<Value>(&line.text[6..]) else {
                    return;
                };
                if let Some(ops) = v["ops"].as_object() {
                    for (op, s) in ops {
                        let entry = self.ops.entry(op.clone()).or_default();
                        entry.0 += s["n"].as_u64().unwrap_or(0);
                        entry.1 += s["errors"].as_u64().unwrap_or(0);
                        let hist = entry.2.get_or_insert_with(|| {
                            Histogram::new_with_bounds(1, 600_000_000, 2).expect("valid bounds")
                        });
                        for pair in s["hist"].as_array().into_iter().flatten() {
                            let (Some(value), Some(count)) = (pair[0].as_u64(), pair[1].as_u64())
                            else {
                                continue;
                            };
                            let _ = hist.record_n(value.max(1), count);
                        }
                    }
                }
                for key in [
                    "successes",
                    "failures",
                    "refused",
                    "stale",
                    "rejected_writes",
                    "reconnects",
                    "revokes",
                ] {
                    *self.counters.entry(key.into()).or_default() += v[key].as_u64().unwrap_or(0);
                }
                if self.first_error.is_none() {
                    self.first_error = v["first_error"].as_str().map(String::from);
                }
            }
            _ => {}
        }
    }

    fn operations(&self) -> u64 {
        self.ops.values().map(|o| o.0).sum()
    }
}

/// What the fault injector did.
#[derive(Default)]
struct Faults {
    kills: u64,
    zombies: u64,
    terminations: u64,
    connections_terminated: u64,
    crashes: Vec<(Instant, Duration)>,
    zombie_windows: Vec<(usize, u64, Instant)>,
}

fn signal(pid: u32, name: &str) -> Result<(), String> {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .map_err(|e| format!("kill -{name} {pid}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("kill -{name} {pid} failed"))
    }
}

fn coordinator(runtime: &tokio::runtime::Runtime, options: Options) -> Result<ExitCode, String> {
    let began = Instant::now();
    let cluster = match &options.database_url {
        Some(_) => None,
        None => Some(Cluster::start().map_err(|e| e.to_string())?),
    };
    let url = match (&options.database_url, &cluster) {
        (Some(url), _) => url.clone(),
        (None, Some(cluster)) => cluster.conninfo("postgres"),
        (None, None) => return Err("no database".into()),
    };
    if options.crash_every.is_some() && cluster.is_none() {
        return Err("--crash-every needs the run's own cluster (no --database-url)".into());
    }
    let lease = Duration::from_millis(options.lease_ms);
    let own = config(&url, "stress-coordinator")?;
    runtime.block_on(async {
        let client = connect(&own).await?;
        client
            .batch_execute(
                "DROP TABLE IF EXISTS stress_tasks, stress_ledger;
                 DROP SEQUENCE IF EXISTS stress_tasks_fence;
                 CREATE TABLE stress_ledger (id bigint NOT NULL, epoch bigint NOT NULL,
                   fence bigint NOT NULL, process bigint NOT NULL, PRIMARY KEY (id, fence))",
            )
            .await
            .map_err(|e| e.to_string())?;
        recorder(&url, "stress-coordinator", lease, None)?
            .install()
            .await
            .map_err(|e| e.to_string())
    })?;
    let seconds = options.duration.unwrap_or(DEFAULT_SECS);
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let (sender, lines) = mpsc::channel::<Line>();
    let processes = options.processes as usize;
    let mut procs = Vec::new();
    for slot in 0..processes {
        procs.push(spawn_worker(&options, &url, slot, 0, seconds, &sender)?);
    }
    let mut generations = processes as u64;
    let mut totals = Totals::default();
    let mut faults = Faults::default();
    let mut rng = fastrand::Rng::with_seed(options.seed);
    let every = |s: Option<f64>| s.map(Duration::from_secs_f64);
    let (kill_every, zombie_every, terminate_every, crash_every) = (
        every(options.kill_every),
        every(options.zombie_every),
        every(options.terminate_every),
        every(options.crash_every),
    );
    let start = Instant::now();
    let mut next_kill = kill_every.map(|d| start + d);
    let mut next_zombie = zombie_every.map(|d| start + d);
    let mut next_terminate = terminate_every.map(|d| start + d);
    let mut next_crash = crash_every.map(|d| start + d);
    let mut stopped: Option<(usize, Instant)> = None;
    let mut next_progress = start + Duration::from_secs(5);
    let mut fault_errors = Vec::new();
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        while let Ok(line) = lines.try_recv() {
            totals.take(&line);
        }
        let now = Instant::now();
        let remaining = deadline.saturating_duration_since(now).as_secs_f64();
        if let Some((slot, since)) = stopped
            && now >= since + lease * 3
        {
            if let Err(e) = signal(procs[slot].child.id(), "CONT") {
                fault_errors.push(e);
            }
            faults
                .zombie_windows
                .push((slot, procs[slot].generation, Instant::now()));
            stopped = None;
        }
        if let (Some(at), Some(d)) = (next_kill, kill_every)
            && now >= at
        {
            next_kill = Some(at + d);
            let candidates: Vec<usize> = (0..processes)
                .filter(|s| stopped.map(|(z, _)| z) != Some(*s))
                .collect();
            if !candidates.is_empty() && remaining > 1.0 {
                let slot = candidates[rng.usize(0..candidates.len())];
                let _ = procs[slot].child.kill();
                let _ = procs[slot].child.wait();
                faults.kills += 1;
                procs[slot] = spawn_worker(&options, &url, slot, generations, remaining, &sender)?;
                generations += 1;
            }
        }
        if let (Some(at), Some(d)) = (next_zombie, zombie_every)
            && now >= at
        {
            next_zombie = Some(at + d);
            if stopped.is_none() && remaining > lease.as_secs_f64() * 4.0 {
                let slot = rng.usize(0..processes);
                match signal(procs[slot].child.id(), "STOP") {
                    Ok(()) => {
                        faults.zombies += 1;
                        stopped = Some((slot, Instant::now()));
                    }
                    Err(e) => fault_errors.push(e),
                }
            }
        }
        if let (Some(at), Some(d)) = (next_terminate, terminate_every)
            && now >= at
        {
            next_terminate = Some(at + d);
            let ended = runtime.block_on(async {
                let client = connect(&own).await?;
                let row = client
                    .query_one(
                        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))
                         FROM pg_stat_activity WHERE application_name = $1",
                        &[&WORKER_APP],
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                Ok::<i64, String>(row.get(0))
            });
            match ended {
                Ok(n) => {
                    faults.terminations += 1;
                    faults.connections_terminated += n as u64;
                }
                Err(e) => fault_errors.push(format!("pg_terminate_backend: {e}")),
            }
        }
        if let (Some(at), Some(d), Some(cluster)) = (next_crash, crash_every, &cluster)
            && now >= at
        {
            next_crash = Some(at + d);
            if remaining > 3.0 {
                let crashed = Instant::now();
                match cluster.crash_restart() {
                    Ok(()) => faults.crashes.push((crashed, crashed.elapsed())),
                    Err(e) => return Err(format!("database restart failed: {e}")),
                }
            }
        }
        if !options.json && now >= next_progress {
            next_progress = now + Duration::from_secs(5);
            eprintln!(
                "{:>5.1}s  {} operations, {} successes acknowledged, faults: {} kills, {} zombies, {} terminations, {} crashes",
                start.elapsed().as_secs_f64(),
                totals.operations(),
                totals.acked.len(),
                faults.kills,
                faults.zombies,
                faults.terminations,
                faults.crashes.len()
            );
        }
    }
    let run_time = start.elapsed();
    if let Some((slot, _)) = stopped {
        let _ = signal(procs[slot].child.id(), "CONT");
        faults
            .zombie_windows
            .push((slot, procs[slot].generation, Instant::now()));
    }
    // Workers stop at the deadline; a zombie's tasks end about a lease later.
    let grace = Instant::now() + lease * 4 + Duration::from_secs(15);
    let mut stragglers = 0;
    for proc in &mut procs {
        loop {
            match proc.child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < grace => std::thread::sleep(Duration::from_millis(50)),
                _ => {
                    stragglers += 1;
                    let _ = proc.child.kill();
                    let _ = proc.child.wait();
                    break;
                }
            }
        }
    }
    drop(sender);
    while let Ok(line) = lines.recv_timeout(Duration::from_secs(5)) {
        totals.take(&line);
    }
    let audit_began = Instant::now();
    let audit = runtime.block_on(audit(&url, &own, lease, options.ids, &totals))?;
    let audit_time = audit_began.elapsed();
    let mut violations = audit.violations;
    // The zombie's finishes after SIGCONT: each must have answered Stale.
    let zombie_stale = totals
        .stale
        .iter()
        .filter(|(slot, generation, _, _, at, _)| {
            faults
                .zombie_windows
                .iter()
                .any(|(z, g, cont)| z == slot && g == generation && at >= cont)
        })
        .count();
    let mut unmet = Vec::new();
    for (flag, set, done) in [
        ("--kill-every", kill_every.is_some(), faults.kills > 0),
        ("--zombie-every", zombie_every.is_some(), faults.zombies > 0),
        (
            "--zombie-every (a stale finish of the zombie)",
            zombie_every.is_some(),
            zombie_stale > 0,
        ),
        (
            "--terminate-every",
            terminate_every.is_some(),
            faults.terminations > 0,
        ),
        (
            "--crash-every",
            crash_every.is_some(),
            !faults.crashes.is_empty(),
        ),
    ] {
        if set && !done {
            unmet.push(flag.to_string());
        }
    }
    if stragglers > 0 {
        fault_errors.push(format!("{stragglers} worker processes did not end in time"));
    }
    // Time to recover: from each crash to the first success acknowledged after it.
    let recoveries: Vec<Value> = faults
        .crashes
        .iter()
        .map(|(at, restart)| {
            let first = totals
                .acked
                .iter()
                .filter(|a| a.3 > *at + *restart)
                .map(|a| a.3)
                .min();
            json!({
                "restart_ms": restart.as_millis() as u64,
                "first_success_after_crash_ms": first.map(|f| (f - *at).as_millis() as u64),
            })
        })
        .collect();
    let acked_before_last_crash = faults
        .crashes
        .last()
        .map(|(at, _)| totals.acked.iter().filter(|a| a.3 < *at).count())
        .unwrap_or(0);
    let latencies: BTreeMap<String, Value> = totals
        .ops
        .iter()
        .map(|(op, (n, errors, hist))| {
            let p = |q: f64| hist.as_ref().map_or(0, |h| h.value_at_quantile(q));
            (
                op.clone(),
                json!({"count": n, "errors": errors, "p50_us": p(0.5), "p99_us": p(0.99),
                       "p999_us": p(0.999), "max_us": hist.as_ref().map_or(0, |h| h.max())}),
            )
        })
        .collect();
    let operations = totals.operations();
    if totals.acked.is_empty() {
        unmet.push("no success acknowledged: the run exercised nothing".into());
    }
    if !unmet.is_empty() {
        violations.push((
            "fault flag set but never injected or never bit".into(),
            Vec::new(),
        ));
    }
    let passed = violations.is_empty() && fault_errors.is_empty();
    let report = json!({
        "backend": "postgres",
        "processes": options.processes,
        "workers_per_process": options.workers,
        "ids": options.ids,
        "lease_ms": options.lease_ms,
        "sabotage": options.sabotage,
        "run_seconds": run_time.as_secs_f64(),
        "wall_seconds": began.elapsed().as_secs_f64(),
        "operations": operations,
        "operations_per_second": operations as f64 / run_time.as_secs_f64().max(1e-9),
        "latencies": latencies,
        "counters": totals.counters,
        "successes_acknowledged": totals.acked.len(),
        "acknowledged_before_last_crash": acked_before_last_crash,
        "stale_finishes": totals.stale.len(),
        "zombie_stale_finishes": zombie_stale,
        "faults": {
            "kills": faults.kills,
            "zombies": faults.zombies,
            "terminations": faults.terminations,
            "connections_terminated": faults.connections_terminated,
            "crashes": faults.crashes.len(),
            "recoveries": recoveries,
        },
        "unmet_faults": unmet,
        "fault_errors": fault_errors,
        "first_worker_error": totals.first_error,
        "audit": {
            "seconds": audit_time.as_secs_f64(),
            "rows": audit.rows,
            "ledger_rows": audit.ledger_rows,
            "point_queries": audit.point_queries,
            "swept_at_end": audit.swept,
        },
        "violations": violations.iter().map(|(rule, ids)| json!({
            "rule": rule, "count": ids.len(), "ids": ids.iter().take(IDS_SHOWN).collect::<Vec<_>>()
        })).collect::<Vec<_>>(),
        "passed": passed,
    });
    let out = if options.json {
        format!("{report}\n")
    } else {
        serde_json::to_string_pretty(&report).unwrap_or_default() + "\n"
    };
    let _ = std::io::stdout().write_all(out.as_bytes());
    if !passed {
        let mut err = String::from("AUDIT FAILED\n");
        for (rule, ids) in &violations {
            let shown: Vec<String> = ids.iter().take(IDS_SHOWN).map(|i| i.to_string()).collect();
            err += &format!("  {rule}: {} ids: {}\n", ids.len(), shown.join(", "));
        }
        for e in report["fault_errors"].as_array().into_iter().flatten() {
            err += &format!("  fault injector: {e}\n");
        }
        for u in report["unmet_faults"].as_array().into_iter().flatten() {
            err += &format!("  not exercised: {u}\n");
        }
        let _ = std::io::stderr().write_all(err.as_bytes());
    }
    drop(cluster);
    Ok(if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

struct Audit {
    violations: Vec<(String, Vec<i64>)>,
    rows: u64,
    ledger_rows: u64,
    point_queries: u64,
    swept: u64,
}

async fn ids_of(client: &Client, sql: &str) -> Result<Vec<i64>, String> {
    let rows = client.query(sql, &[]).await.map_err(|e| e.to_string())?;
    let mut ids: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}

/// The audit, read from the database once every worker process has ended.
async fn audit(
    url: &str,
    own: &tokio_postgres::Config,
    lease: Duration,
    ids: u64,
    totals: &Totals,
) -> Result<Audit, String> {
    let client = connect(own).await?;
    let recorder = recorder(url, "stress-coordinator", lease, None)?;
    // Past the longest lease no worker renews anything: the sweep must
    // leave no row Working or Revoking.
    tokio::time::sleep(lease + Duration::from_millis(200)).await;
    let mut swept = 0;
    for _ in 0..1000 {
        let moved = recorder.sweep(1000).await.map_err(|e| e.to_string())?;
        if moved.is_empty() {
            break;
        }
        swept += moved.len() as u64;
    }
    let mut violations = Vec::new();
    let mut check = |rule: &str, mut found: Vec<i64>| {
        found.sort_unstable();
        found.dedup();
        if !found.is_empty() {
            violations.push((rule.to_string(), found));
        }
    };
    check(
        "two side effects in one epoch (ledger rows per id and epoch > 1)",
        ids_of(
            &client,
            "SELECT id FROM stress_ledger GROUP BY id, epoch HAVING count(*) > 1",
        )
        .await?,
    );
    // The stored codes of the phases that read as Success, and of the leased ones.
    let success = state_codes(&[Phase::Success, Phase::Revoking]);
    let leased = state_codes(&[Phase::Working, Phase::Revoking]);
    check(
        "Success without its epoch's ledger row (fence of the success)",
        ids_of(
            &client,
            &format!(
                "SELECT t.id FROM stress_tasks t WHERE t.state IN ({success}) AND NOT EXISTS
                   (SELECT 1 FROM stress_ledger l WHERE l.id = t.id AND l.epoch = t.epoch
                    AND l.fence = t.success_fence)"
            ),
        )
        .await?,
    );
    check(
        "side effect committed but the id is not Success in that epoch",
        ids_of(
            &client,
            &format!(
                "SELECT l.id FROM stress_ledger l JOIN stress_tasks t ON t.id = l.id
                 WHERE l.epoch > t.epoch OR (l.epoch = t.epoch AND (t.state NOT IN ({success})
                   OR t.success_fence IS DISTINCT FROM l.fence))"
            ),
        )
        .await?,
    );
    check(
        "revoked epoch without its side effect",
        ids_of(
            &client,
            "SELECT t.id FROM stress_tasks t, generate_series(0, t.epoch - 1) e
             WHERE NOT EXISTS (SELECT 1 FROM stress_ledger l WHERE l.id = t.id AND l.epoch = e)",
        )
        .await?,
    );
    check(
        "Working or Revoking after the sweep ran past the longest lease",
        ids_of(
            &client,
            &format!("SELECT id FROM stress_tasks WHERE state IN ({leased})"),
        )
        .await?,
    );
    // Acknowledged successes (committed, some before a crash) must all be there.
    let ledger_rows = client
        .query("SELECT id, epoch, fence FROM stress_ledger", &[])
        .await
        .map_err(|e| e.to_string())?;
    let ledger: HashSet<(i64, i64, i64)> = ledger_rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let task_rows = client
        .query(
            "SELECT id, state, epoch, success_fence FROM stress_tasks",
            &[],
        )
        .await
        .map_err(|e| e.to_string())?;
    let tasks: HashMap<i64, (i16, i64, Option<i64>)> = task_rows
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2), r.get(3))))
        .collect();
    let lost: Vec<i64> = totals
        .acked
        .iter()
        .filter(|(id, epoch, fence, _)| {
            let row_ok = match tasks.get(id) {
                Some((_, e, _)) if e > epoch => true,
                Some((state, e, success)) => {
                    e == epoch
                        && phase_of(*state).state() == TaskState::Success
                        && *success == Some(*fence)
                }
                None => false,
            };
            !row_ok || !ledger.contains(&(*id, *epoch, *fence))
        })
        .map(|a| a.0)
        .collect();
    check("acknowledged success lost", lost);
    let live_stale: Vec<i64> = totals
        .stale
        .iter()
        .filter(|s| s.5 && u128::from(s.3) < lease.as_millis())
        .map(|s| s.2)
        .collect();
    check(
        "a live lease was taken over: a finish answered Stale within one lease of its claim",
        live_stale,
    );
    // Listings and counts agree with point queries.
    let mut disagree = Vec::new();
    let mut read = Vec::new();
    for id in 0..ids.min(POINT_QUERIES) as i64 {
        read.push((id, recorder.query(&id).await.map_err(|e| e.to_string())?));
    }
    let point_queries = read.len() as u64;
    for state in [TaskState::Working, TaskState::Failed, TaskState::Success] {
        let listed = recorder.list(state).await.map_err(|e| e.to_string())?;
        let counted = recorder.count(state).await.map_err(|e| e.to_string())?;
        if counted != listed.len() as u64 {
            disagree.extend(listed.iter().take(IDS_SHOWN).copied());
        }
        let listed: HashSet<i64> = listed.into_iter().collect();
        for (id, got) in &read {
            if (*got == state) != listed.contains(id) {
                disagree.push(*id);
            }
        }
    }
    disagree.sort_unstable();
    disagree.dedup();
    check("listings or counts disagree with point queries", disagree);
    Ok(Audit {
        violations,
        rows: tasks.len() as u64,
        ledger_rows: ledger.len() as u64,
        point_queries,
        swept,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_sabotage_changes_the_statement_it_names() {
        let good = statements(None).expect("good statements");
        let unfenced = statements(Some(Sabotage::Unfenced)).expect("the finish guard is found");
        assert_ne!(good.finish, unfenced.finish);
        assert!(
            !unfenced.finish.contains("fence = $2"),
            "{}",
            unfenced.finish
        );
        assert_eq!(good.claim, unfenced.claim);
        let clock = statements(Some(Sabotage::ClientClock)).expect("the claim guard is found");
        assert!(
            clock.claim.contains("t.lease_until <= $4"),
            "{}",
            clock.claim
        );
        assert_eq!(good.finish, clock.finish);
    }

    fn line(text: &str) -> Line {
        Line {
            slot: 1,
            generation: 2,
            at: Instant::now(),
            text: text.into(),
        }
    }

    #[test]
    fn worker_lines_are_merged() {
        let mut totals = Totals::default();
        totals.take(&line("ok 5 1 42"));
        totals.take(&line("stale 6 43 12"));
        totals.take(&line("stale-err 7 44 13"));
        totals.take(&line(
            r#"stats {"ops":{"claim":{"n":3,"errors":1,"hist":[[100,2],[900,1]]}},"successes":1,"stale":1}"#,
        ));
        totals.take(&line("garbage"));
        assert_eq!(totals.acked.len(), 1);
        assert_eq!(
            (totals.acked[0].0, totals.acked[0].1, totals.acked[0].2),
            (5, 1, 42)
        );
        assert_eq!(totals.stale.len(), 2);
        assert_eq!(
            (totals.stale[0].2, totals.stale[0].3, totals.stale[0].5),
            (6, 12, true)
        );
        assert_eq!(
            (totals.stale[1].2, totals.stale[1].3, totals.stale[1].5),
            (7, 13, false)
        );
        assert_eq!(totals.operations(), 3);
        assert_eq!(totals.counters["successes"], 1);
        let claim = &totals.ops["claim"];
        assert_eq!((claim.0, claim.1), (3, 1));
        assert_eq!(claim.2.as_ref().map(|h| h.len()), Some(3));
    }
}
