//! The PostgreSQL backend on a throwaway cluster (fsync and synchronous
//! commit on), against `pgbench` on the same cluster in the same run:
//!
//! - `refusals`: `CLIENTS` tasks launch one id held by a live lease, every
//!   launch refused, for `SECONDS`, alternating with `pgbench` running the
//!   crate's own read statement on that id (`-M prepared`, same clients)
//!   with the crate's queries of it, and with plain tokio-postgres clients
//!   running the same prepared read; WAL bytes per refusal from
//!   `pg_current_wal_insert_lsn()` around each run, the cluster otherwise
//!   idle;
//! - `launch_finish`: one claim plus one fenced finish through the crate,
//!   from `CLIENTS` concurrent tasks, each on a fresh id; `pgbench` running
//!   the same statements a fresh id's launch sends (the claim's write and
//!   the finish; then with the read before them) and its built-in TPC-B;
//! - `list_failed`, `page`, `count`: listing 1,000 failed ids among 10^6
//!   rows, one keyset page of 1,000 from the middle of 10^6, and the
//!   index-only count of each state;
//! - `hot_key`: `HOT` tasks launch one fresh id at once while `HOT` others
//!   query it, `ROUNDS` rounds; exactly one launch is granted (asserted);
//!   latency percentiles of the refusals beside those of the queries.
//!
//! The figures are printed at the end and copied to
//! benches/results/postgres.md; compare ratios within a run.

use async_tasks_recorder_pg::cluster::Cluster;
use async_tasks_recorder_pg::{
    Config, LaunchRefusal, Outcome, PgRecorder, Phase, Statements, TaskState, state_code,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

const CLIENTS: usize = 8;
const SECONDS: u64 = 10;
const HOT: usize = 32;
const ROUNDS: i64 = 200;
/// Rounds of the crate's launches against pgbench's, each run this long.
const ROUNDS_OF_LAUNCHES: usize = 6;
const LAUNCH_SECONDS: u64 = 5;
/// The id the refusals launch, held by a live lease throughout.
const HELD: i64 = 0;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Rewrites `$n` placeholders into pgbench variables or literals.
fn pgbench_sql(sql: &str, vars: &[&str]) -> String {
    let mut out = sql.to_string();
    for (i, var) in vars.iter().enumerate().rev() {
        out = out.replace(&format!("${}", i + 1), var);
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What a pgbench run reports: transactions per second and in all.
struct Pgbench {
    tps: f64,
    transactions: u64,
}

/// Runs pgbench with `args`.
fn pgbench(cluster: &Cluster, args: &[&str]) -> Pgbench {
    let output = Command::new(cluster.tool("pgbench"))
        .args(args)
        .arg(cluster.conninfo("postgres"))
        .output()
        .expect("run pgbench");
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "pgbench {args:?} failed:\n{text}");
    let field = |prefix: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(prefix))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no {prefix:?} in pgbench output:\n{text}"))
    };
    Pgbench {
        tps: field("tps = "),
        transactions: field("number of transactions actually processed: ") as u64,
    }
}

/// pgbench running the custom `script` from `CLIENTS` clients for `seconds`.
fn pgbench_script(cluster: &Cluster, name: &str, script: &str, seconds: u64) -> Pgbench {
    let path = std::env::temp_dir().join(format!("atr-pgbench-{}-{name}.sql", std::process::id()));
    std::fs::write(&path, script).expect("write pgbench script");
    let (clients, seconds) = (CLIENTS.to_string(), seconds.to_string());
    let run = pgbench(
        cluster,
        &[
            "-n",
            "-M",
            "prepared",
            "-c",
            &clients,
            "-j",
            "2",
            "-T",
            &seconds,
            "-f",
            path.to_str().unwrap(),
        ],
    );
    let _ = std::fs::remove_file(&path);
    run
}

/// The WAL written so far, in bytes.
async fn wal(admin: &tokio_postgres::Client) -> i64 {
    admin
        .query_one(
            "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::bigint",
            &[],
        )
        .await
        .expect("read the WAL position")
        .get(0)
}

/// `CLIENTS` tasks calling `call` on `recorder` for `seconds`: calls made.
async fn for_a_while<F, Fut>(recorder: &PgRecorder<i64>, seconds: u64, call: F) -> u64
where
    F: Fn(PgRecorder<i64>) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let stop = Instant::now() + Duration::from_secs(seconds);
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (recorder, call) = (recorder.clone(), call.clone());
            tokio::spawn(async move {
                let mut done = 0u64;
                while Instant::now() < stop {
                    call(recorder.clone()).await;
                    done += 1;
                }
                done
            })
        })
        .collect();
    let mut done = 0;
    for task in tasks {
        done += task.await.unwrap();
    }
    done
}

/// `CLIENTS` plain tokio-postgres clients, each on a connection of its own,
/// running the prepared `read` of the held id for `seconds`: the client
/// library's own rate, with none of the crate's work.
async fn raw_reads(config: &tokio_postgres::Config, read: &str, seconds: u64) -> u64 {
    let stop = Instant::now() + Duration::from_secs(seconds);
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (config, read) = (config.clone(), read.to_owned());
            tokio::spawn(async move {
                let (client, connection) = config.connect(tokio_postgres::NoTls).await.unwrap();
                tokio::spawn(connection);
                let types = [tokio_postgres::types::Type::INT8; 2];
                let statement = client.prepare_typed(&read, &types).await.unwrap();
                let mut done = 0u64;
                while Instant::now() < stop {
                    client.query(&statement, &[&HELD, &0i64]).await.unwrap();
                    done += 1;
                }
                done
            })
        })
        .collect();
    let mut done = 0;
    for task in tasks {
        done += task.await.unwrap();
    }
    done
}

/// A refused launch of the held id.
async fn refused(recorder: PgRecorder<i64>) {
    let refusal = recorder.claim(HELD).await.unwrap().err();
    assert_eq!(refusal, Some(LaunchRefusal::Working));
}

/// A query of the held id.
async fn queried(recorder: PgRecorder<i64>) {
    assert_eq!(recorder.query(&HELD).await.unwrap(), TaskState::Working);
}

/// The `q`-quantile of sorted `latencies`.
fn quantile(latencies: &[Duration], q: f64) -> Duration {
    latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)]
}

/// Latencies of the refused launches and of the queries, each sorted.
struct Hot {
    refused: Vec<Duration>,
    queried: Vec<Duration>,
}

impl Hot {
    fn line(&self) -> String {
        let (r50, r99) = (quantile(&self.refused, 0.50), quantile(&self.refused, 0.99));
        let (q50, q99) = (quantile(&self.queried, 0.50), quantile(&self.queried, 0.99));
        format!(
            "refusal p50 {r50:?} p99 {r99:?}; query p50 {q50:?} p99 {q99:?}; \
             refusal / query: p50 {:.2}, p99 {:.2}",
            r50.as_secs_f64() / q50.as_secs_f64(),
            r99.as_secs_f64() / q99.as_secs_f64()
        )
    }
}

/// `ROUNDS` rounds of `HOT` launches and `HOT` queries of `id(round)`, all
/// at once; `grants` launches of each round must be granted (and are
/// finished after it).
async fn hot_key(recorder: &PgRecorder<i64>, id: impl Fn(i64) -> i64, grants: usize) -> Hot {
    let mut hot = Hot {
        refused: Vec::new(),
        queried: Vec::new(),
    };
    for round in 0..ROUNDS {
        let id = id(round);
        let tasks: Vec<_> = (0..2 * HOT)
            .map(|n| {
                let r = recorder.clone();
                tokio::spawn(async move {
                    let started = Instant::now();
                    if n % 2 == 1 {
                        r.query(&id).await.unwrap();
                        return (started.elapsed(), None);
                    }
                    let claim = r.claim(id).await.unwrap();
                    (started.elapsed(), Some(claim))
                })
            })
            .collect();
        let mut granted = Vec::new();
        for task in tasks {
            match task.await.unwrap() {
                (took, None) => hot.queried.push(took),
                (_, Some(Ok(attempt))) => granted.push(attempt),
                (took, Some(Err(_))) => hot.refused.push(took),
            }
        }
        assert_eq!(
            granted.len(),
            grants,
            "round {round}: {} granted",
            granted.len()
        );
        for attempt in granted {
            attempt.finish(Outcome::Ok).await.unwrap();
        }
    }
    hot.refused.sort();
    hot.queried.sort();
    hot
}

/// The median of `values`: of an even number, the mean of the middle two.
fn median_of(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    if sorted.len() % 2 == 0 {
        (sorted[middle - 1] + sorted[middle]) / 2.0
    } else {
        sorted[middle]
    }
}

fn bench(c: &mut Criterion) {
    let cluster = Cluster::start().unwrap_or_else(|e| panic!("{e}"));
    let rt = runtime();
    let settings = Config {
        pool_size: CLIENTS,
        ..Config::default()
    };
    let recorder = PgRecorder::<i64>::new(cluster.config("postgres"), "bench", settings.clone())
        .expect("recorder");
    rt.block_on(recorder.install()).expect("install");
    let admin = rt.block_on(async {
        let (client, connection) = cluster
            .config("postgres")
            .connect(tokio_postgres::NoTls)
            .await
            .expect("admin connection");
        tokio::spawn(connection);
        client
    });

    // Refusals, first, while the cluster is idle: the held id's lease is an
    // hour, so no renewal writes during the runs.
    let holder = PgRecorder::<i64>::new(
        cluster.config("postgres"),
        "bench",
        Config {
            lease: Duration::from_secs(3600),
            ..settings.clone()
        },
    )
    .expect("holder");
    let held = rt
        .block_on(holder.claim(HELD))
        .unwrap()
        .expect("hold the id");
    let read = Statements::new("bench", "bigint").read;
    let read_script = format!("{};\n", pgbench_sql(&read, &[&HELD.to_string(), "0"]));
    let (mut refusals, mut refusal_wal, mut reads, mut read_wal, mut queries) = (0, 0, 0, 0, 0);
    let mut raw = 0;
    let mut read_tps = Vec::new();
    for _ in 0..2 {
        let before = rt.block_on(wal(&admin));
        refusals += rt.block_on(for_a_while(&recorder, SECONDS, refused));
        let between = rt.block_on(wal(&admin));
        let run = pgbench_script(&cluster, "read", &read_script, SECONDS);
        let after = rt.block_on(wal(&admin));
        queries += rt.block_on(for_a_while(&recorder, SECONDS, queried));
        raw += rt.block_on(raw_reads(&cluster.config("postgres"), &read, SECONDS));
        refusal_wal += between - before;
        read_wal += after - between;
        reads += run.transactions;
        read_tps.push(run.tps);
    }
    drop(held);
    let runs = 2.0 * SECONDS as f64;
    let refusal_rate = refusals as f64 / runs;
    let query_rate = queries as f64 / runs;
    let raw_rate = raw as f64 / runs;
    let read_rate = read_tps.iter().sum::<f64>() / read_tps.len() as f64;

    // launch + finish through the crate, CLIENTS at a time.
    let next = Arc::new(AtomicI64::new(1));
    let mut group = c.benchmark_group("pg");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(1));
    let mut crate_rate = Vec::new();
    group.bench_function("launch_finish", |b| {
        b.iter_custom(|iters| {
            let started = Instant::now();
            rt.block_on(async {
                let per = iters.div_ceil(CLIENTS as u64);
                let tasks: Vec<_> = (0..CLIENTS)
                    .map(|_| {
                        let (r, next) = (recorder.clone(), next.clone());
                        tokio::spawn(async move {
                            for _ in 0..per {
                                let id = next.fetch_add(1, Ordering::Relaxed);
                                let attempt = r.claim(id).await.unwrap().unwrap();
                                attempt.finish(Outcome::Ok).await.unwrap();
                            }
                        })
                    })
                    .collect();
                for task in tasks {
                    task.await.unwrap();
                }
            });
            let elapsed = started.elapsed();
            crate_rate.push(iters as f64 / elapsed.as_secs_f64());
            elapsed
        })
    });

    // The same load, alternating with pgbench running a fresh id's
    // statements: its writes (the claim and the finish), and the read
    // before them, the statements the crate sends; ROUNDS_OF_LAUNCHES
    // rounds, so that each ratio is of runs a few seconds apart.
    let sql = Statements::new("pgb", "bigint");
    rt.block_on(async {
        let r = PgRecorder::<i64>::with_statements(
            cluster.config("postgres"),
            sql.clone(),
            settings.clone(),
        )
        .unwrap();
        r.install().await.unwrap();
    });
    let claim = pgbench_sql(&sql.claim_new, &[":id", "30000000"]);
    let success = state_code(Phase::Success).to_string();
    let finish = pgbench_sql(&sql.finish, &[":id", ":fence", &success]);
    let fresh_read = pgbench_sql(&sql.read, &[":id", "0"]);
    // `\gset` stores the claim's returned columns as `:fence` and `:epoch`.
    let random_id = "\\set id random(1, 9000000000000000000)";
    let writes = format!("{random_id}\n{claim} \\gset\n{finish};\n");
    let reads_first = format!("{random_id}\n{fresh_read};\n{claim} \\gset\n{finish};\n");
    let launched = {
        let next = next.clone();
        move |r: PgRecorder<i64>| {
            let id = next.fetch_add(1, Ordering::Relaxed);
            async move {
                let attempt = r.claim(id).await.unwrap().unwrap();
                attempt.finish(Outcome::Ok).await.unwrap();
            }
        }
    };
    let (mut crate_rates, mut writes_tps, mut reads_first_tps) =
        (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS_OF_LAUNCHES {
        let done = rt.block_on(for_a_while(&recorder, LAUNCH_SECONDS, launched.clone()));
        crate_rates.push(done as f64 / LAUNCH_SECONDS as f64);
        writes_tps.push(pgbench_script(&cluster, "claim", &writes, LAUNCH_SECONDS).tps);
        reads_first_tps
            .push(pgbench_script(&cluster, "read-claim", &reads_first, LAUNCH_SECONDS).tps);
    }
    Command::new(cluster.tool("pgbench"))
        .args(["-i", "-q", "-s", "10"])
        .arg(cluster.conninfo("postgres"))
        .output()
        .expect("pgbench -i");
    let (clients, seconds) = (CLIENTS.to_string(), SECONDS.to_string());
    let tpcb = pgbench(
        &cluster,
        &["-M", "prepared", "-c", &clients, "-j", "2", "-T", &seconds],
    );

    // Listings among 10^6 rows: 1,000 failed, the rest succeeded.
    let listed = PgRecorder::<i64>::new(cluster.config("postgres"), "listing", settings.clone())
        .expect("recorder");
    rt.block_on(listed.install()).expect("install");
    let (failed, succeeded) = (state_code(Phase::Failed), state_code(Phase::Success));
    cluster
        .psql(
            "postgres",
            &format!(
                "INSERT INTO listing (id, state, epoch, fence, success_fence)
                 SELECT g, CASE WHEN g % 1000 = 0 THEN {failed} ELSE {succeeded} END, 0, g, g
                 FROM generate_series(1, 1000000) g"
            ),
        )
        .expect("fill listing");
    cluster
        .psql("postgres", "VACUUM ANALYZE listing")
        .expect("vacuum listing");
    let mut list_times = Vec::new();
    group.bench_function("list_1000_failed_of_1e6", |b| {
        b.iter_custom(|iters| {
            let started = Instant::now();
            for _ in 0..iters {
                let ids = rt.block_on(listed.list(TaskState::Failed)).unwrap();
                assert_eq!(ids.len(), 1000);
            }
            let elapsed = started.elapsed();
            list_times.push(elapsed / iters as u32);
            elapsed
        })
    });
    let mut page_times = Vec::new();
    group.bench_function("page_1000_of_1e6", |b| {
        b.iter_custom(|iters| {
            let started = Instant::now();
            for n in 0..iters {
                // A cursor anywhere in the middle: the page's cost is the
                // page's, not the ids before it.
                let after = 400_000 + (n as i64 * 7_919) % 200_000;
                let page = rt
                    .block_on(listed.list_page(TaskState::Success, Some(&after), 1000))
                    .unwrap();
                assert_eq!(page.ids.len(), 1000);
                assert!(page.ids[0] > after);
            }
            let elapsed = started.elapsed();
            page_times.push(elapsed / iters as u32);
            elapsed
        })
    });
    let mut count_times = Vec::new();
    group.bench_function("count_failed_of_1e6", |b| {
        b.iter_custom(|iters| {
            let started = Instant::now();
            for _ in 0..iters {
                let n = rt.block_on(listed.count(TaskState::Failed)).unwrap();
                assert_eq!(n, 1000);
            }
            let elapsed = started.elapsed();
            count_times.push(elapsed / iters as u32);
            elapsed
        })
    });
    group.finish();
    let started = Instant::now();
    let counted_success = rt.block_on(listed.count(TaskState::Success)).unwrap();
    let count_success_time = started.elapsed();
    assert_eq!(counted_success, 999_000);

    // Hot key: HOT launches of one id at once, and HOT queries of it
    // among them, ROUNDS rounds: a fresh id, whose launches race to insert
    // its row (exactly one wins), then an id held by a live lease (the
    // retries of a running task).
    let race = rt.block_on(hot_key(&recorder, |round| -1 - round, 1));
    let hold = rt.block_on(async {
        let attempt = holder.claim(-1_000_000).await.unwrap().unwrap();
        let latencies = hot_key(&recorder, |_| -1_000_000, 0).await;
        drop(attempt);
        latencies
    });

    let ours_median = median_of(&crate_rate);
    let median = |times: &mut Vec<Duration>| {
        times.sort();
        times[times.len() / 2]
    };
    let ratios = |of: &[f64]| -> Vec<f64> {
        crate_rates
            .iter()
            .zip(of)
            .map(|(ours, theirs)| ours / theirs)
            .collect()
    };
    let (writes_ratio, reads_first_ratio) = (ratios(&writes_tps), ratios(&reads_first_tps));
    let rates = |values: &[f64]| {
        let shown: Vec<String> = values.iter().map(|v| format!("{v:.0}")).collect();
        shown.join(", ")
    };
    println!("\n=== PostgreSQL backend, {CLIENTS} clients, one run");
    println!(
        "refused launch of a held id: {refusal_rate:.0}/s; pgbench, the crate's read statement: \
         {read_rate:.0} tps ({}); crate query: {query_rate:.0}/s",
        rates(&read_tps)
    );
    println!(
        "plain tokio-postgres, the same prepared read, a connection per client: {raw_rate:.0}/s"
    );
    println!(
        "ratio refusal/pgbench-read: {:.2}; query/pgbench-read: {:.2}; refusal/query: {:.2}; \
         refusal/plain-client: {:.2}; plain-client/pgbench-read: {:.2}",
        refusal_rate / read_rate,
        query_rate / read_rate,
        refusal_rate / query_rate,
        refusal_rate / raw_rate,
        raw_rate / read_rate
    );
    println!(
        "WAL: {refusal_wal} bytes over {refusals} refusals ({:.4} B each); \
         {read_wal} bytes over {reads} pgbench reads",
        refusal_wal as f64 / refusals as f64
    );
    println!(
        "launch+finish, {ROUNDS_OF_LAUNCHES} rounds of {LAUNCH_SECONDS} s each: crate {}/s; \
         pgbench claim+finish {} tps; pgbench read+claim+finish {} tps",
        rates(&crate_rates),
        rates(&writes_tps),
        rates(&reads_first_tps)
    );
    println!(
        "ratio crate/pgbench claim+finish, per round: {} (median {:.2}); \
         crate/pgbench read+claim+finish: {} (median {:.2})",
        writes_ratio
            .iter()
            .map(|r| format!("{r:.2}"))
            .collect::<Vec<_>>()
            .join(", "),
        median_of(&writes_ratio),
        reads_first_ratio
            .iter()
            .map(|r| format!("{r:.2}"))
            .collect::<Vec<_>>()
            .join(", "),
        median_of(&reads_first_ratio)
    );
    println!("crate launch+finish, criterion: median sample {ours_median:.0}/s");
    println!("pgbench TPC-B (-s 10): {:.0} tps", tpcb.tps);
    println!(
        "list 1,000 failed of 10^6: median {:?}; page of 1,000 of 10^6: median {:?}; \
         count Failed (1,000): median {:?}; count Success (999,000): {:?}",
        median(&mut list_times),
        median(&mut page_times),
        median(&mut count_times),
        count_success_time
    );
    println!(
        "hot key, a fresh id: {HOT} launches + {HOT} queries x {ROUNDS} rounds, exactly one \
         granted each; {}",
        race.line()
    );
    println!(
        "hot key, a held id: {HOT} launches + {HOT} queries x {ROUNDS} rounds, none granted; {}",
        hold.line()
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
