//! The fault injector: on its schedule it kills a worker process with -9
//! (and starts a fresh one), makes one a zombie (frozen with SIGSTOP for
//! three leases right after a claim, then let go on with SIGCONT), ends
//! every worker connection with `pg_terminate_backend`, crashes and
//! restarts the database, and fails over to the standby (own cluster
//! only). [`Faults`] is what it did, and [`Injector::unmet`] names each
//! fault asked for that never happened or never bit.

use super::database::{Database, WORKER_APP, connect};
use super::message::Order;
use super::workers::{Workers, signal};
use crate::options::Options;
use serde::Serialize;
use std::time::{Duration, Instant};

/// How long a zombie stays frozen, in leases.
const ZOMBIE_LEASES: u32 = 3;
/// From a freeze order to the claim it waits for: kills spare the zombie's
/// slot this long beyond its freeze.
const ZOMBIE_CLAIM_WITHIN: Duration = Duration::from_secs(2);

/// A fault's period and when it is next due.
struct Every {
    period: Option<Duration>,
    next: Option<Instant>,
}

impl Every {
    fn new(seconds: Option<f64>, start: Instant) -> Every {
        let period = seconds.map(Duration::from_secs_f64);
        Every {
            period,
            next: period.map(|d| start + d),
        }
    }

    /// Whether the fault is due at `now`; if so, schedules the next one.
    fn due(&mut self, now: Instant) -> bool {
        match (self.next, self.period) {
            (Some(at), Some(d)) if now >= at => {
                self.next = Some(at + d);
                true
            }
            _ => false,
        }
    }

    fn asked(&self) -> bool {
        self.period.is_some()
    }
}

/// A database crash: when it began, and how long the restart took.
#[derive(Clone, Copy, Debug)]
pub struct Crash {
    pub at: Instant,
    pub restart: Duration,
}

/// A promotion: when the primary died, how long until the standby accepted
/// writes, and until the old primary followed it as the new standby.
#[derive(Clone, Copy, Debug)]
pub struct Failover {
    pub at: Instant,
    pub promote: Duration,
    pub rejoin: Duration,
}

/// How long the standby's WAL receiver is paused before the primary dies,
/// so that the primary commits what the standby will never receive: lost
/// by an asynchronous promotion for certain, never acknowledged by a
/// synchronous one.
const RECEIVER_PAUSE: Duration = Duration::from_millis(700);

/// How many times each process fault was injected.
#[derive(Serialize, Debug, Default, Clone, Copy)]
pub struct Injected {
    pub kills: u64,
    /// Freeze orders sent; each freezes its process at its next claim.
    pub zombies: u64,
    /// Rounds of `pg_terminate_backend`.
    pub terminations: u64,
    pub connections_terminated: u64,
    /// Rounds not run because no server accepted the coordinator's
    /// connection: a database the run does not manage (`--database-url`)
    /// whose failover manager is between primaries. The next round is due
    /// one period later.
    pub terminations_skipped: u64,
}

/// What the fault injector did.
#[derive(Default)]
pub struct Faults {
    pub injected: Injected,
    pub crashes: Vec<Crash>,
    pub failovers: Vec<Failover>,
    /// Every fault injected, when, for the timeline.
    pub marks: Vec<(Instant, &'static str)>,
    /// Faults that could not be injected (a signal that failed, say).
    pub errors: Vec<String>,
}

/// What the injector acts on.
pub struct Targets<'a> {
    pub runtime: &'a tokio::runtime::Runtime,
    /// The coordinator's connection settings, for `pg_terminate_backend`.
    pub admin: &'a tokio_postgres::Config,
    /// The database, whose own cluster alone may be crashed or failed over.
    pub database: &'a Database,
}

/// The schedule of every fault, and what it did so far.
pub struct Injector {
    kill: Every,
    zombie: Every,
    terminate: Every,
    crash: Every,
    failover: Every,
    lease: Duration,
    /// The last zombie's slot, and until when it may still be frozen.
    zombie_until: Option<(usize, Instant)>,
    rng: fastrand::Rng,
    pub done: Faults,
}

impl Injector {
    /// Each fault first comes one period after `start`.
    pub fn new(options: &Options, start: Instant) -> Injector {
        Injector {
            kill: Every::new(options.kill_every, start),
            zombie: Every::new(options.zombie_every, start),
            terminate: Every::new(options.terminate_every, start),
            crash: Every::new(options.crash_every, start),
            failover: Every::new(options.failover_every, start),
            lease: Duration::from_millis(options.lease_ms),
            zombie_until: None,
            rng: fastrand::Rng::with_seed(options.seed),
            done: Faults::default(),
        }
    }

    /// Injects every fault due at `now`, `remaining` seconds before the
    /// deadline. Fails only if a fresh worker process cannot start or the
    /// database cannot restart.
    pub fn tick(
        &mut self,
        now: Instant,
        remaining: f64,
        workers: &mut Workers,
        targets: &Targets<'_>,
    ) -> Result<(), String> {
        let zombie = self
            .zombie_until
            .filter(|(_, until)| now < *until)
            .map(|(slot, _)| slot);
        if self.kill.due(now) {
            let candidates: Vec<usize> = (0..workers.slots())
                .filter(|s| zombie != Some(*s))
                .collect();
            if !candidates.is_empty() && remaining > 1.0 {
                let slot = candidates[self.rng.usize(0..candidates.len())];
                self.done.injected.kills += 1;
                self.done.marks.push((Instant::now(), "kill"));
                workers.replace(slot, remaining)?;
            }
        }
        // One zombie at a time: the next one is due once this one woke.
        if zombie.is_none() && self.zombie.due(now) && remaining > self.lease.as_secs_f64() * 4.0 {
            // Frozen at a random moment, a process may hold no attempt, or
            // one that nobody takes over before it wakes: ordered to freeze
            // right after a claim, it holds a fresh one past its lease.
            let slot = self.rng.usize(0..workers.slots());
            let frozen = self.lease * ZOMBIE_LEASES;
            let order = Order::Freeze {
                ms: frozen.as_millis() as u64,
            };
            match workers.order(slot, &order) {
                Ok(()) => {
                    self.done.injected.zombies += 1;
                    self.done.marks.push((now, "zombie"));
                    self.zombie_until = Some((slot, now + ZOMBIE_CLAIM_WITHIN + frozen));
                }
                Err(e) => self.done.errors.push(e),
            }
        }
        if self.terminate.due(now) {
            match targets
                .runtime
                .block_on(terminate_worker_connections(targets.admin))
            {
                Ok(n) => {
                    self.done.injected.terminations += 1;
                    self.done.marks.push((Instant::now(), "termination"));
                    self.done.injected.connections_terminated += n;
                }
                Err(Terminate::NoConnection(_)) if targets.database.cluster().is_none() => {
                    self.done.injected.terminations_skipped += 1;
                }
                Err(Terminate::NoConnection(e) | Terminate::Failed(e)) => {
                    self.done.errors.push(format!("pg_terminate_backend: {e}"))
                }
            }
        }
        if self.failover.due(now) && remaining > 5.0 {
            let at = Instant::now();
            match fail_over(targets.database) {
                Ok((promote, rejoin)) => {
                    self.done.marks.push((at, "failover"));
                    self.done.failovers.push(Failover {
                        at,
                        promote,
                        rejoin,
                    })
                }
                Err(e) => return Err(format!("failover failed: {e}")),
            }
        }
        if let Some(cluster) = targets.database.cluster()
            && self.crash.due(now)
            && remaining > 3.0
        {
            let at = Instant::now();
            match cluster.crash_restart() {
                Ok(()) => {
                    self.done.marks.push((at, "crash"));
                    self.done.crashes.push(Crash {
                        at,
                        restart: at.elapsed(),
                    })
                }
                Err(e) => return Err(format!("database restart failed: {e}")),
            }
        }
        Ok(())
    }

    /// The flags of the faults asked for that never happened or never bit
    /// (a zombie bites with a `Stale` finish after it woke).
    pub fn unmet(&self, zombie_stale_finishes: usize) -> Vec<String> {
        let done = &self.done;
        [
            ("--kill-every", self.kill.asked(), done.injected.kills > 0),
            (
                "--zombie-every",
                self.zombie.asked(),
                done.injected.zombies > 0,
            ),
            (
                "--zombie-every (a stale finish of the zombie)",
                self.zombie.asked(),
                zombie_stale_finishes > 0,
            ),
            (
                "--terminate-every",
                self.terminate.asked(),
                done.injected.terminations > 0,
            ),
            (
                "--crash-every",
                self.crash.asked(),
                !done.crashes.is_empty(),
            ),
            (
                "--failover-every",
                self.failover.asked(),
                !done.failovers.is_empty(),
            ),
        ]
        .into_iter()
        .filter(|(_, asked, happened)| *asked && !happened)
        .map(|(flag, _, _)| flag.to_string())
        .collect()
    }
}

/// Pauses the standby's WAL receiver, lets the primary commit a while,
/// crashes the primary, kills the paused receiver (so that it never reads
/// what was already sent), promotes the standby, and makes the old
/// primary its standby. Returns how long the promotion and the rejoin took.
fn fail_over(database: &Database) -> Result<(Duration, Duration), String> {
    let (Some(primary), Some(standby)) = (database.cluster(), database.standby()) else {
        return Err("--failover-every needs the run's own primary and standby".into());
    };
    // After a crash of the primary the standby reconnects within a few
    // seconds (its retry interval); wait for it, bounded.
    let mut receiver = None;
    for _ in 0..75 {
        receiver = standby.wal_receiver_pid().ok().flatten();
        if receiver.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let receiver = receiver.ok_or("the standby's WAL receiver did not run within 15 s")?;
    signal(receiver, "STOP")?;
    std::thread::sleep(RECEIVER_PAUSE);
    let died = Instant::now();
    primary.stop("immediate").map_err(|e| e.to_string())?;
    signal(receiver, "KILL")?;
    standby
        .promote()
        .map_err(|e| format!("the standby was not promoted: {e}"))?;
    let promote = died.elapsed();
    database.promoted();
    primary
        .follow(standby, database.replication())
        .map_err(|e| e.to_string())?;
    Ok((promote, died.elapsed()))
}

/// Why a round of `pg_terminate_backend` did not run.
enum Terminate {
    /// No server accepted the connection (none accepts writes, say).
    NoConnection(String),
    /// The statement failed.
    Failed(String),
}

/// Ends every worker connection; returns how many were ended.
async fn terminate_worker_connections(admin: &tokio_postgres::Config) -> Result<u64, Terminate> {
    let client = connect(admin).await.map_err(Terminate::NoConnection)?;
    let row = client
        .query_one(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))
             FROM pg_stat_activity WHERE application_name = $1",
            &[&WORKER_APP],
        )
        .await
        .map_err(|e| Terminate::Failed(e.to_string()))?;
    Ok(row.get::<_, i64>(0) as u64)
}
