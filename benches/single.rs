//! Single-thread costs per operation, every contestant in the same run.
//!
//! Each criterion iteration is one operation, so the estimates read as
//! ns/op. Tables are built outside the timed sections. The issue-2 targets
//! read `single/launch_block_fresh` and `single/query_hit` (10^5 ids) and
//! `listing/failed_1000` (10^6 ids) against `raw_scc`.

#[macro_use]
#[path = "support/mod.rs"]
mod support;

use bench_report::{Group, Workload};
use criterion::{
    BenchmarkGroup, Criterion, criterion_group, criterion_main, measurement::WallTime,
};
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use support::{Contestant, Launch};

/// Fresh ids per table in the launch and revoke workloads.
const IDS: u64 = 100_000;
/// Spawned launches per drained batch.
const SPAWN_BATCH: u64 = 10_000;
/// Failed ids among the listed table.
const FAILED_IDS: u64 = bench_report::LISTED_FAILED;

/// A table holding ids `0..n`, all `Success` except every `fail_every`-th.
fn filled<C: Contestant>(n: u64, fail_every: Option<u64>) -> C {
    let table = C::new();
    for id in 0..n {
        let ok = fail_every.is_none_or(|every| id % every != 0);
        assert!(matches!(table.launch_block(id, ok), Launch::Ran(_)));
    }
    table
}

/// Times `op` over `iters` ids, in rounds of at most `IDS` on a new table
/// from `setup` each round; building and dropping tables is not timed.
fn rounds<C: Contestant>(iters: u64, setup: impl Fn() -> C, op: impl Fn(&C, u64)) -> Duration {
    let mut elapsed = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(IDS);
        let table = setup();
        let start = Instant::now();
        for id in 0..n {
            op(&table, id);
        }
        elapsed += start.elapsed();
        left -= n;
        drop(table);
    }
    elapsed
}

fn launch_block_fresh<C: Contestant>(group: &mut BenchmarkGroup<'_, WallTime>) {
    group.bench_function(C::NAME, |b| {
        b.iter_custom(|iters| {
            rounds(iters, C::new, |table, id| {
                black_box(table.launch_block(id, true));
            })
        })
    });
}

fn launch_spawned<C: Contestant>(group: &mut BenchmarkGroup<'_, WallTime>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime");
    group.bench_function(C::NAME, |b| {
        b.iter_custom(|iters| {
            let mut elapsed = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let n = left.min(SPAWN_BATCH);
                let table = C::new();
                let done = Arc::new(AtomicUsize::new(0));
                elapsed += runtime.block_on(async {
                    let start = Instant::now();
                    for id in 0..n {
                        table.launch_spawn(id, &done);
                    }
                    while done.load(Ordering::Relaxed) < n as usize {
                        tokio::task::yield_now().await;
                    }
                    start.elapsed()
                });
                left -= n;
            }
            elapsed
        })
    });
}

fn query_hit<C: Contestant>(group: &mut BenchmarkGroup<'_, WallTime>) {
    let mut table = None;
    group.bench_function(C::NAME, |b| {
        let table = table.get_or_insert_with(|| filled::<C>(IDS, None));
        b.iter_custom(|iters| {
            let start = Instant::now();
            for i in 0..iters {
                black_box(table.query(i % IDS));
            }
            start.elapsed()
        })
    });
}

fn query_miss<C: Contestant>(group: &mut BenchmarkGroup<'_, WallTime>) {
    let mut table = None;
    group.bench_function(C::NAME, |b| {
        let table = table.get_or_insert_with(|| filled::<C>(IDS, None));
        b.iter_custom(|iters| {
            let start = Instant::now();
            for i in 0..iters {
                black_box(table.query(IDS + i % IDS));
            }
            start.elapsed()
        })
    });
}

fn revoke<C: Contestant>(group: &mut BenchmarkGroup<'_, WallTime>) {
    group.bench_function(C::NAME, |b| {
        b.iter_custom(|iters| {
            rounds(
                iters,
                || filled::<C>(iters.min(IDS), None),
                |table, id| {
                    black_box(table.revoke(id));
                },
            )
        })
    });
}

fn wait_finished<C: Contestant>(group: &mut BenchmarkGroup<'_, WallTime>) {
    // The report expects exactly the contestants that have a `wait`.
    assert_eq!(C::new().wait(0).is_some(), C::ID.has_wait(), "{}", C::NAME);
    if !C::ID.has_wait() {
        return;
    }
    let mut table = None;
    group.bench_function(C::NAME, |b| {
        let table = table.get_or_insert_with(|| filled::<C>(IDS, Some(3)));
        b.iter_custom(|iters| {
            let start = Instant::now();
            for i in 0..iters {
                black_box(table.wait(i % IDS));
            }
            start.elapsed()
        })
    });
}

fn listing<C: Contestant>(group: &mut BenchmarkGroup<'_, WallTime>, total: u64) {
    let mut table = None;
    group.bench_function(C::NAME, |b| {
        let table = table.get_or_insert_with(|| {
            let table = filled::<C>(total, Some(total / FAILED_IDS));
            assert_eq!(table.list_failed().len() as u64, FAILED_IDS);
            table
        });
        b.iter(|| black_box(table.list_failed()))
    });
}

/// Benchmarks the function `$workload` for every contestant in the group of
/// `Workload::$name`.
macro_rules! single_group {
    ($c:expr, $workload:ident, $name:ident) => {
        let mut group = $c.benchmark_group(Group::Single(Workload::$name).id());
        for_each_contestant!($workload(&mut group));
        group.finish();
    };
}

fn single(c: &mut Criterion) {
    single_group!(c, launch_block_fresh, LaunchBlockFresh);
    single_group!(c, launch_spawned, LaunchSpawned);
    single_group!(c, query_hit, QueryHit);
    single_group!(c, query_miss, QueryMiss);
    single_group!(c, revoke, Revoke);
    single_group!(c, wait_finished, WaitFinished);

    // 1,000 failed ids among 10^6 recorded ones (10^5 in quick mode).
    let total = support::Mode::from_env().listing_ids();
    let mut group = c.benchmark_group(
        Group::Listing {
            failed: FAILED_IDS,
            ids: total,
        }
        .id(),
    );
    group.sample_size(if support::quick() { 10 } else { 30 });
    for_each_contestant!(listing(&mut group, total));
    group.finish();
}

criterion_group! {
    name = benches;
    config = support::criterion();
    targets = single
}
criterion_main!(benches);
