//! Two replicas of the service on one throwaway PostgreSQL cluster, driven
//! over HTTP by a real client: every payment id is sent to both replicas at
//! once, with retries on 409 and on connection errors, and long-polled for
//! its outcome; a tenth of the ids are refunded and paid again. Mid-run one
//! replica is frozen with SIGSTOP past its leases (its late finishes are
//! `Stale`), then each in turn is killed with SIGKILL and restarted. At the
//! end the database must hold exactly one payment per `(id, epoch)` of a
//! success, a payment for every `Success`, a refund for every ended epoch,
//! and nothing `Working` after a sweep; and the replicas' logs must show
//! the fenced finish of a payment as a span with its id, epoch, fence and
//! outcome.
//!
//! Every loop is bounded in count and by one deadline; a failure names the id.

use async_tasks_recorder_pg::cluster::Cluster;
use async_tasks_recorder_pg::{Config, PgRecorder, TaskState};
use reqwest::{Client, Method, StatusCode};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Payment ids.
const IDS: usize = 300;
/// Every this many ids, one is refunded once paid, then paid again.
const REFUND_EVERY: usize = 10;
/// Ids driven at once.
const CONCURRENCY: usize = 8;
/// Rounds of start-and-poll one payment may take.
const ROUNDS: usize = 80;
/// The whole run's bound.
const DEADLINE: Duration = Duration::from_secs(50);
/// The client's bound on one request (above the long poll's).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(8);
/// The long poll each round asks for, in seconds.
const WAIT_SECS: u32 = 3;
/// The replicas' lease: a killed replica's ids are taken over after it.
const LEASE_MS: &str = "1500";

/// One service process and the file its log goes to.
struct Replica {
    child: Child,
    base: String,
    log: PathBuf,
}

impl Replica {
    /// Starts `service` on `database`, waiting (bounded) for its address.
    fn start(database: &str, log: PathBuf) -> Replica {
        let log_file = std::fs::File::create(&log).expect("create the replica's log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_service"))
            .args(["--database", database, "--listen", "127.0.0.1:0"])
            .args([
                "--lease-ms",
                LEASE_MS,
                "--work-ms",
                "100",
                "--fail-rate",
                "0.2",
            ])
            .env("RUST_LOG", "info,async_tasks_recorder_pg=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .expect("start the service binary");
        let stdout = child.stdout.take().expect("piped stdout");
        let (sender, announced) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = sender.send(line);
            }
        });
        let line = announced
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| {
                let _ = child.kill();
                let log = std::fs::read_to_string(&log).unwrap_or_default();
                panic!("the replica did not announce its address in 30 s; its log:\n{log}")
            });
        let base = line
            .strip_prefix("listening on ")
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        Replica { child, base, log }
    }

    /// SIGKILL: no shutdown, no flush, its transactions cut mid-flight.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}

/// What the drivers share: the replicas' addresses (a restarted replica
/// has a new one), the deadline and the counts reported at the end.
struct Drive {
    client: Client,
    bases: RwLock<[String; 2]>,
    until: Instant,
    paid: AtomicUsize,
    conflicts: AtomicUsize,
    connection_errors: AtomicUsize,
    unavailable: AtomicUsize,
}

/// What one request got: a status and JSON body, or no answer.
enum Got {
    Answer(StatusCode, Value),
    NoAnswer,
}

impl Drive {
    fn base(&self, replica: usize) -> String {
        self.bases.read().unwrap()[replica].clone()
    }

    async fn send(&self, replica: usize, method: Method, path: &str) -> Got {
        let url = format!("{}{path}", self.base(replica));
        let answer = match self.client.request(method, &url).send().await {
            Ok(response) => {
                let status = response.status();
                match response.text().await {
                    Ok(text) => serde_json::from_str(&text).ok().map(|v| (status, v)),
                    Err(_) => None,
                }
            }
            Err(_) => None,
        };
        match answer {
            Some((status, body)) => {
                if status == StatusCode::CONFLICT {
                    self.conflicts.fetch_add(1, Ordering::Relaxed);
                }
                if status == StatusCode::SERVICE_UNAVAILABLE {
                    self.unavailable.fetch_add(1, Ordering::Relaxed);
                }
                Got::Answer(status, body)
            }
            None => {
                self.connection_errors.fetch_add(1, Ordering::Relaxed);
                Got::NoAnswer
            }
        }
    }

    fn late(&self, id: &str, doing: &str) -> Result<(), String> {
        if Instant::now() >= self.until {
            return Err(format!("{id}: {doing} not done by the deadline"));
        }
        Ok(())
    }

    /// Pays `id` in `epoch`: starts it on both replicas at once, then
    /// long-polls one, until it reads `Success` in that epoch.
    async fn pay(&self, id: &str, epoch: u64) -> Result<(), String> {
        let path = format!("/payments/{id}");
        let mut last = String::from("nothing yet");
        for round in 0..ROUNDS {
            self.late(id, "payment")?;
            let (a, b) = tokio::join!(
                self.send(0, Method::PUT, &path),
                self.send(1, Method::PUT, &path)
            );
            for got in [a, b] {
                if let Got::Answer(status, body) = got {
                    let unexpected = !matches!(
                        status,
                        StatusCode::OK
                            | StatusCode::ACCEPTED
                            | StatusCode::CONFLICT
                            | StatusCode::SERVICE_UNAVAILABLE
                    );
                    if unexpected {
                        return Err(format!("{id}: PUT answered {status}: {body}"));
                    }
                }
            }
            let poll = format!("{path}?wait={WAIT_SECS}");
            let mut polled = self.send(round % 2, Method::GET, &poll).await;
            if matches!(polled, Got::NoAnswer) {
                polled = self.send((round + 1) % 2, Method::GET, &poll).await;
            }
            match polled {
                Got::Answer(StatusCode::OK, body) => {
                    if body["state"] == "success" && body["epoch"] == epoch {
                        return Ok(());
                    }
                    last = body.to_string();
                }
                Got::Answer(status, body) => last = format!("{status} {body}"),
                Got::NoAnswer => {
                    last = "no replica answered".into();
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        Err(format!(
            "{id}: not paid in epoch {epoch} after {ROUNDS} rounds; last {last}"
        ))
    }

    /// Refunds paid `id` (epoch 0): a DELETE until the id reads `NotFound`
    /// in epoch 1. A DELETE cut off by a kill may or may not have applied:
    /// the read after it tells.
    async fn refund(&self, id: &str) -> Result<(), String> {
        let path = format!("/payments/{id}");
        let mut last = String::from("nothing yet");
        for round in 0..ROUNDS {
            self.late(id, "refund")?;
            match self.send(round % 2, Method::DELETE, &path).await {
                Got::Answer(StatusCode::OK, body) if body["epoch"] == 1 => return Ok(()),
                Got::Answer(status, body) => last = format!("DELETE: {status} {body}"),
                Got::NoAnswer => last = "DELETE: no answer".into(),
            }
            let read = self.send((round + 1) % 2, Method::GET, &path).await;
            if let Got::Answer(StatusCode::OK, body) = read
                && body["epoch"] == 1
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(format!(
            "{id}: not refunded after {ROUNDS} rounds; last {last}"
        ))
    }

    /// One id's whole story.
    async fn settle(&self, n: usize) -> Result<(), String> {
        let id = name(n);
        self.pay(&id, 0).await?;
        if n.is_multiple_of(REFUND_EVERY) {
            self.refund(&id).await?;
            self.pay(&id, 1).await?;
        }
        self.paid.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

fn name(n: usize) -> String {
    format!("pay-{n:03}")
}

/// Kills replica `which` with SIGKILL once `drive` has paid `after` ids
/// (or the deadline nears), leaves it dead a moment so requests to it fail,
/// and starts a fresh one on the same database.
async fn kill_and_restart(
    drive: &Drive,
    replicas: &mut [Replica; 2],
    which: usize,
    after: usize,
    database: &str,
) -> Result<(), String> {
    while drive.paid.load(Ordering::Relaxed) < after {
        if Instant::now() + Duration::from_secs(15) >= drive.until {
            return Err(format!(
                "only {} ids paid before kill {which}",
                drive.paid.load(Ordering::Relaxed)
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let paid = drive.paid.load(Ordering::Relaxed);
    if paid >= IDS {
        return Err(format!(
            "every id was paid before kill {which}: not mid-run"
        ));
    }
    replicas[which].kill();
    println!("replica {which} killed with {paid} of {IDS} ids paid");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = replicas[which].log.with_extension("restarted.log");
    let database = database.to_string();
    let fresh = tokio::task::spawn_blocking(move || Replica::start(&database, log))
        .await
        .map_err(|e| format!("restart replica {which}: {e}"))?;
    drive.bases.write().unwrap()[which] = fresh.base.clone();
    replicas[which] = fresh;
    Ok(())
}

/// Freezes replica `which` with SIGSTOP for two leases once `drive` has
/// paid `after` ids: the other replica takes its ids over, and when it
/// resumes, its fenced finishes are `Stale` and its payments roll back.
async fn freeze(
    drive: &Drive,
    replicas: &[Replica; 2],
    which: usize,
    after: usize,
) -> Result<(), String> {
    while drive.paid.load(Ordering::Relaxed) < after {
        if Instant::now() + Duration::from_secs(15) >= drive.until {
            return Err(format!(
                "only {} ids paid before the freeze",
                drive.paid.load(Ordering::Relaxed)
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pid = replicas[which].child.id().to_string();
    let signal = |name: &str| {
        let sent = Command::new("kill").args([name, &pid]).status();
        match sent {
            Ok(status) if status.success() => Ok(()),
            other => Err(format!("kill {name} {pid}: {other:?}")),
        }
    };
    signal("-STOP")?;
    println!(
        "replica {which} frozen with {} of {IDS} ids paid",
        drive.paid.load(Ordering::Relaxed)
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    signal("-CONT")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_payments_on_two_replicas_survive_sigkill_once_per_epoch() {
    let began = Instant::now();
    let cluster = Cluster::start().expect("a throwaway cluster");
    let database = cluster.conninfo("postgres");
    let logs = std::env::temp_dir().join(format!("service-http-{}", std::process::id()));
    std::fs::create_dir_all(&logs).unwrap();
    // Kept if the test fails, for the replicas' side of the story.
    println!("replica logs in {}", logs.display());
    let mut replicas = {
        let (db, dir) = (database.clone(), logs.clone());
        tokio::task::spawn_blocking(move || {
            let a = Replica::start(&db, dir.join("a.log"));
            let b = Replica::start(&db, dir.join("b.log"));
            [a, b]
        })
        .await
        .unwrap()
    };
    let client = Client::builder()
        .no_proxy()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .unwrap();
    let drive = Arc::new(Drive {
        client,
        bases: RwLock::new([replicas[0].base.clone(), replicas[1].base.clone()]),
        until: Instant::now() + DEADLINE,
        paid: AtomicUsize::new(0),
        conflicts: AtomicUsize::new(0),
        connection_errors: AtomicUsize::new(0),
        unavailable: AtomicUsize::new(0),
    });

    let gate = Arc::new(Semaphore::new(CONCURRENCY));
    let mut drivers = tokio::task::JoinSet::new();
    for n in 0..IDS {
        let (drive, gate) = (drive.clone(), gate.clone());
        drivers.spawn(async move {
            let _permit = gate.acquire_owned().await.map_err(|e| e.to_string())?;
            drive.settle(n).await
        });
    }
    freeze(&drive, &replicas, 0, IDS / 4).await.unwrap();
    kill_and_restart(&drive, &mut replicas, 1, IDS / 2, &database)
        .await
        .unwrap();
    kill_and_restart(&drive, &mut replicas, 0, 3 * IDS / 4, &database)
        .await
        .unwrap();
    let mut failures = Vec::new();
    while let Some(joined) = drivers.join_next().await {
        match joined {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failures.push(e),
            Err(e) => failures.push(format!("a driver panicked: {e}")),
        }
    }
    failures.sort();
    assert!(
        failures.is_empty(),
        "{} of {IDS} ids failed, first: {:#?}",
        failures.len(),
        &failures[..failures.len().min(10)]
    );

    // Both restarted replicas served the drive.
    for (which, replica) in replicas.iter().enumerate() {
        let metrics = format!("{}/metrics", replica.base);
        let text = drive
            .client
            .get(&metrics)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let starts = text
            .lines()
            .find_map(|l| l.strip_prefix("payments_operations_total{op=\"start\"} "))
            .and_then(|n| n.parse::<u64>().ok());
        assert!(
            starts > Some(0),
            "restarted replica {which} served no start:\n{text}"
        );
    }

    // The database's word: a sweep, then the rows and the ledger.
    let settings = Config {
        lease: Duration::from_millis(1500),
        ..Config::default()
    };
    let recorder = PgRecorder::<String>::new(cluster.config("postgres"), "payments", settings)
        .expect("a recorder on the service's table");
    recorder.sweep(100_000).await.expect("the sweep");
    let working = recorder.list(TaskState::Working).await.unwrap();
    assert!(
        working.is_empty(),
        "ids left Working after the sweep: {working:?}"
    );
    let (db, connection) = cluster
        .config("postgres")
        .connect(tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let rows = db
        .query("SELECT id, epoch, fence, entry FROM payments_ledger", &[])
        .await
        .unwrap();
    // (id, epoch, entry) -> fences
    let mut ledger: BTreeMap<(String, i64, String), Vec<i64>> = BTreeMap::new();
    for row in &rows {
        let key = (row.get(0), row.get(1), row.get(3));
        ledger.entry(key).or_default().push(row.get(2));
    }
    for ((id, epoch, entry), fences) in &ledger {
        assert_eq!(
            fences.len(),
            1,
            "{id}: {} {entry} rows in epoch {epoch}: fences {fences:?}",
            fences.len()
        );
    }
    let mut checked = BTreeSet::new();
    for n in 0..IDS {
        let id = name(n);
        let stored = recorder.read(&id).await.unwrap();
        let want_epoch = u64::from(n.is_multiple_of(REFUND_EVERY));
        assert_eq!(stored.phase.state(), TaskState::Success, "{id}: {stored:?}");
        assert_eq!(stored.epoch, want_epoch, "{id}: {stored:?}");
        let paid = ledger.get(&(id.clone(), stored.epoch as i64, "pay".to_string()));
        let fence = stored.success_fence.map(|f| f as i64);
        assert_eq!(
            paid.map(|f| f[0]),
            fence,
            "{id}: Success whose payment is {paid:?}: {stored:?}"
        );
        for ended in 0..stored.epoch as i64 {
            for entry in ["pay", "refund"] {
                let key = (id.clone(), ended, entry.to_string());
                assert!(
                    ledger.contains_key(&key),
                    "{id}: epoch {ended} ended without its {entry}"
                );
            }
        }
        checked.insert(id);
    }
    let strays: Vec<_> = ledger
        .keys()
        .filter(|(id, ..)| !checked.contains(id))
        .collect();
    assert!(
        strays.is_empty(),
        "ledger rows of ids never sent: {strays:?}"
    );
    let payments = ledger.keys().filter(|(.., e)| e == "pay").count();
    assert_eq!(
        payments,
        IDS + IDS / REFUND_EVERY,
        "one payment per (id, epoch)"
    );

    // The fenced finish of one payment, as a replica's span logged it.
    let first = recorder.read(&name(1)).await.unwrap();
    let span = format!(
        "finish_in{{id=\"{}\" epoch=0 fence={} outcome=Applied}}",
        name(1),
        first.success_fence.unwrap_or_default()
    );
    let mut logged = String::new();
    for entry in std::fs::read_dir(&logs).unwrap() {
        logged += &std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default();
    }
    assert!(logged.contains(&span), "no replica logged {span}");
    let stale = logged
        .lines()
        .filter(|line| line.contains(":finish_in{") && line.contains("outcome=Stale}"))
        .count();
    drop(replicas);
    let _ = std::fs::remove_dir_all(&logs);
    println!(
        "{IDS} ids, {payments} payments, {} refunds, a freeze ({stale} stale finishes), \
         2 SIGKILLs and restarts; {} answers 409, {} requests without an answer, \
         {} answers 503; {:.1} s",
        IDS / REFUND_EVERY,
        drive.conflicts.load(Ordering::Relaxed),
        drive.connection_errors.load(Ordering::Relaxed),
        drive.unavailable.load(Ordering::Relaxed),
        began.elapsed().as_secs_f64()
    );
}
