//! Throughput under contention: 1 to 16 OS threads on one table, four key
//! distributions, two read/write mixes, every contestant in the same run.
//!
//! A write is a `launch_block` whose task fails 30% of the time; a failed
//! launch is retried at once (up to 4 attempts), and a launch refused because
//! the id already succeeded revokes it instead, so the table keeps churning
//! rather than settling into all-`Success`. Each criterion iteration is one
//! operation (a query or a write), spread over the threads.
//!
//! Points with more threads than the machine has cores are oversubscribed;
//! the report marks them with the core count it reads from the machine.

#[macro_use]
#[path = "support/mod.rs"]
mod support;

use bench_report::{Group, Keys, Mix};
use criterion::{
    BenchmarkGroup, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main,
    measurement::WallTime,
};
use std::hint::black_box;
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use support::keys::{DRAWN, Distribution};
use support::{Contestant, Launch, SUCCESS};

const FAIL_PERCENT: u32 = 30;
const ATTEMPTS: usize = 4;

/// One write: launch, retry a failure, revoke a success.
fn write<C: Contestant>(table: &C, id: u64, rng: &mut fastrand::Rng) {
    for _ in 0..ATTEMPTS {
        match table.launch_block(id, rng.u32(0..100) >= FAIL_PERCENT) {
            Launch::Ran(true) => return,
            Launch::Ran(false) => continue,
            Launch::Refused(SUCCESS) => {
                table.revoke(id);
                return;
            }
            Launch::Refused(_) => return,
        }
    }
}

/// `ops` operations by one thread, `write_percent` of them writes.
fn worker<C: Contestant>(table: &C, keys: &[u64], write_percent: u32, ops: u64, seed: u64) {
    let mut rng = fastrand::Rng::with_seed(seed);
    for _ in 0..ops {
        let id = keys[rng.usize(0..DRAWN)];
        if rng.u32(0..100) < write_percent {
            write(table, id, &mut rng);
        } else {
            black_box(table.query(id));
        }
    }
}

/// Runs the benchmark of `C` at each thread count. The threads are spawned
/// once per point and meet at barriers around every timed round, so thread
/// creation stays out of the measurement.
fn contend<C: Contestant>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    keys: &[u64],
    write_percent: u32,
    threads: &[u64],
) {
    let table = C::new();
    for &t in threads {
        let start = Barrier::new(t as usize + 1);
        let end = Barrier::new(t as usize + 1);
        let per_thread = AtomicU64::new(0);
        let round = AtomicU64::new(0);
        let stop = AtomicBool::new(false);
        std::thread::scope(|scope| {
            for worker_index in 0..t {
                let (table, start, end, per_thread, round, stop) =
                    (&table, &start, &end, &per_thread, &round, &stop);
                scope.spawn(move || {
                    loop {
                        start.wait();
                        if stop.load(Ordering::Acquire) {
                            return;
                        }
                        let seed = round.load(Ordering::Acquire) * 64 + worker_index;
                        let ops = per_thread.load(Ordering::Acquire);
                        worker(table, keys, write_percent, ops, seed);
                        end.wait();
                    }
                });
            }
            group.bench_with_input(BenchmarkId::new(C::NAME, t), &t, |b, &t| {
                b.iter_custom(|iters| {
                    let ops = iters.div_ceil(t);
                    per_thread.store(ops, Ordering::Release);
                    round.fetch_add(1, Ordering::AcqRel);
                    let began = Instant::now();
                    start.wait();
                    end.wait();
                    let elapsed = began.elapsed();
                    // Charge the time to the operations actually run.
                    Duration::from_secs_f64(elapsed.as_secs_f64() * iters as f64 / (ops * t) as f64)
                })
            });
            stop.store(true, Ordering::Release);
            start.wait();
        });
    }
}

fn contention(c: &mut Criterion) {
    let threads: &[u64] = &bench_report::CONTENTION_THREADS;
    for distribution in Keys::ALL {
        let keys = Distribution::of(distribution).draw(0x5eed);
        for mix in Mix::ALL {
            let write_percent = mix.write_percent();
            let mut group = c.benchmark_group(Group::Contention(distribution, mix).id());
            group.throughput(Throughput::Elements(1));
            if !support::quick() {
                // 200 points: shorter samples keep the full run under 20 minutes.
                group
                    .warm_up_time(Duration::from_millis(200))
                    .measurement_time(Duration::from_millis(800));
            }
            for_each_contestant!(contend(&mut group, &keys, write_percent, threads));
            group.finish();
        }
    }
}

criterion_group! {
    name = benches;
    config = support::criterion();
    targets = contention
}
criterion_main!(benches);
