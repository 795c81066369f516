//! The PostgreSQL backend on a throwaway cluster (fsync and synchronous
//! commit on), against `pgbench` on the same cluster in the same run:
//!
//! - `launch_finish`: one claim plus one fenced finish through the crate,
//!   from `CLIENTS` concurrent tasks, each on a fresh id;
//! - `pgbench` running the same two statements as a custom script with the
//!   same client count (`-M prepared`), and pgbench's built-in TPC-B;
//! - `list_failed`: listing 1,000 failed ids among 10^6 rows;
//! - `hot_key`: `HOT` tasks launch one id at once; exactly one is granted
//!   (asserted), latency percentiles of the launches.
//!
//! The ratios are printed at the end and copied to benches/results/postgres.md.

use async_tasks_recorder_pg::cluster::Cluster;
use async_tasks_recorder_pg::{
    Config, Outcome, PgRecorder, Phase, Statements, TaskState, state_code,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

const CLIENTS: usize = 8;
const PGBENCH_SECONDS: &str = "10";
const HOT: usize = 32;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Rewrites `$n` placeholders into pgbench variables.
fn pgbench_sql(sql: &str, vars: &[&str]) -> String {
    let mut out = sql.to_string();
    for (i, var) in vars.iter().enumerate().rev() {
        out = out.replace(&format!("${}", i + 1), var);
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Runs pgbench and returns its tps.
fn pgbench(cluster: &Cluster, args: &[&str]) -> f64 {
    let output = Command::new(cluster.tool("pgbench"))
        .args(args)
        .arg(cluster.conninfo("postgres"))
        .output()
        .expect("run pgbench");
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "pgbench {args:?} failed:\n{text}");
    text.lines()
        .find(|line| line.starts_with("tps = "))
        .and_then(|line| line[6..].split_whitespace().next())
        .and_then(|tps| tps.parse().ok())
        .unwrap_or_else(|| panic!("no tps in pgbench output:\n{text}"))
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
    let next = Arc::new(AtomicI64::new(1));

    // launch + finish through the crate, CLIENTS at a time.
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

    // The same load for a fixed 10 s, right before pgbench's 10 s.
    let timed_rate = rt.block_on(async {
        let stop = Instant::now() + Duration::from_secs(10);
        let tasks: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let (r, next) = (recorder.clone(), next.clone());
                tokio::spawn(async move {
                    let mut done = 0u64;
                    while Instant::now() < stop {
                        let id = next.fetch_add(1, Ordering::Relaxed);
                        let attempt = r.claim(id).await.unwrap().unwrap();
                        attempt.finish(Outcome::Ok).await.unwrap();
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
        done as f64 / 10.0
    });

    // pgbench: the same two statements, then TPC-B, same clients.
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
    // `\gset` stores the claim's returned columns as `:fence` and `:epoch`.
    let script = format!("\\set id random(1, 9000000000000000000)\n{claim} \\gset\n{finish};\n");
    let script_path = std::env::temp_dir().join(format!("atr-pgbench-{}.sql", std::process::id()));
    std::fs::write(&script_path, script).expect("write pgbench script");
    let clients = CLIENTS.to_string();
    let custom = pgbench(
        &cluster,
        &[
            "-n",
            "-M",
            "prepared",
            "-c",
            &clients,
            "-j",
            "2",
            "-T",
            PGBENCH_SECONDS,
            "-f",
            script_path.to_str().unwrap(),
        ],
    );
    let _ = std::fs::remove_file(&script_path);
    Command::new(cluster.tool("pgbench"))
        .args(["-i", "-q", "-s", "10"])
        .arg(cluster.conninfo("postgres"))
        .output()
        .expect("pgbench -i");
    let tpcb = pgbench(
        &cluster,
        &[
            "-M",
            "prepared",
            "-c",
            &clients,
            "-j",
            "2",
            "-T",
            PGBENCH_SECONDS,
        ],
    );

    // list 1,000 failed among 10^6 rows.
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
    group.finish();

    // Hot key: HOT launches of one id at once, 200 rounds.
    let mut latencies = Vec::new();
    rt.block_on(async {
        for round in 0..200i64 {
            let id = -1 - round;
            let tasks: Vec<_> = (0..HOT)
                .map(|_| {
                    let r = recorder.clone();
                    tokio::spawn(async move {
                        let started = Instant::now();
                        let claim = r.claim(id).await.unwrap();
                        let took = started.elapsed();
                        (claim.is_ok(), took, claim.ok())
                    })
                })
                .collect();
            let mut granted = 0;
            let mut attempts = Vec::new();
            for task in tasks {
                let (ok, took, attempt) = task.await.unwrap();
                granted += usize::from(ok);
                latencies.push(took);
                attempts.extend(attempt);
            }
            assert_eq!(granted, 1, "round {round}: {granted} launches granted");
            for attempt in attempts {
                attempt.finish(Outcome::Ok).await.unwrap();
            }
        }
    });
    latencies.sort();
    let p = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];

    let ours = crate_rate.iter().copied().fold(0.0, f64::max);
    let ours_median = {
        let mut r = crate_rate.clone();
        r.sort_by(f64::total_cmp);
        r[r.len() / 2]
    };
    list_times.sort();
    println!("\n=== PostgreSQL backend, {CLIENTS} clients, one run");
    println!("crate launch+finish, criterion: median sample {ours_median:.0}/s (best {ours:.0}/s)");
    println!("crate launch+finish, 10 s right before pgbench: {timed_rate:.0}/s");
    println!("pgbench same two statements: {custom:.0} tps");
    println!("pgbench TPC-B (-s 10): {tpcb:.0} tps");
    println!(
        "ratio crate/pgbench-same: {:.2} (10 s run), {:.2} (criterion median)",
        timed_rate / custom,
        ours_median / custom
    );
    println!(
        "ratio crate(10 s)/TPC-B: {:.2}; pgbench-same/TPC-B: {:.2}",
        timed_rate / tpcb,
        custom / tpcb
    );
    println!(
        "list 1,000 failed of 10^6: median {:?}",
        list_times[list_times.len() / 2]
    );
    println!(
        "hot key: {HOT} launches x 200 rounds, exactly one granted each; p50 {:?}, p99 {:?}, max {:?}",
        p(0.50),
        p(0.99),
        latencies[latencies.len() - 1]
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
