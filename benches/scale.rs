//! Per-operation cost and memory per recorded id as the table grows:
//! 10^3, 10^5, 10^6 and 10^7 ids (10^3 and 10^5 in quick mode).
//!
//! Memory is the growth of live heap bytes while a table is filled, counted
//! by a global allocator wrapper, divided by the ids recorded; it includes
//! any garbage the map's epoch-based reclamation has not freed yet. The
//! figures go to [`bench_report::MEMORY_FILE`] in criterion's directory, as
//! [`bench_report::MemoryRow`]s, for the report.

#[macro_use]
#[path = "support/mod.rs"]
mod support;

use bench_report::{Group, MemoryRow, ScaleWorkload};
use criterion::{
    BenchmarkGroup, BenchmarkId, Criterion, criterion_group, criterion_main, measurement::WallTime,
};
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::Mutex;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};
use support::{Contestant, Launch};

/// Live heap bytes of this process.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call forwards to `System` with the caller's arguments.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded contract.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: forwarded contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Heap growth per id of each table filled, written out after the run.
static MEMORY: Mutex<Vec<MemoryRow>> = Mutex::new(Vec::new());

/// Criterion settings for a group at table size `n`: fewer, shorter samples
/// for the largest tables, whose filling dominates the run time.
fn sized(group: &mut BenchmarkGroup<'_, WallTime>, n: u64) {
    if n >= 10_000_000 {
        group
            .sample_size(10)
            .measurement_time(Duration::from_millis(800));
    }
}

/// A table of ids `0..n`, all `Success`; records its heap growth per id.
fn filled<C: Contestant>(n: u64) -> C {
    let before = LIVE.load(Ordering::Relaxed);
    let table = C::new();
    for id in 0..n {
        assert!(matches!(table.launch_block(id, true), Launch::Ran(true)));
    }
    let grown = LIVE.load(Ordering::Relaxed) - before;
    MEMORY
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(MemoryRow {
            contestant: C::ID,
            ids: n,
            bytes_per_id: grown as f64 / n as f64,
        });
    table
}

/// Both groups at size `n`; the table is built only if a benchmark of it
/// runs (criterion's filter may skip both).
fn at_size<C: Contestant>(c: &mut Criterion, n: u64) {
    let table = std::cell::OnceCell::new();
    let mut rng = fastrand::Rng::with_seed(n);
    let picks: Vec<u64> = (0..1 << 16).map(|_| rng.u64(0..n)).collect();
    let mut query = c.benchmark_group(Group::Scale(ScaleWorkload::QueryHit).id());
    sized(&mut query, n);
    query.bench_with_input(BenchmarkId::new(C::NAME, n), &n, |b, _| {
        let table = table.get_or_init(|| filled::<C>(n));
        b.iter_custom(|iters| {
            let start = Instant::now();
            for i in 0..iters {
                black_box(table.query(picks[i as usize & 0xffff]));
            }
            start.elapsed()
        })
    });
    query.finish();

    // Fresh ids launched in chunks of at most n/10, each chunk revoked
    // untimed afterwards, so the table stays near n ids.
    let chunk = (n / 10).max(100);
    let mut next = n;
    let mut launch = c.benchmark_group(Group::Scale(ScaleWorkload::LaunchBlockFresh).id());
    sized(&mut launch, n);
    launch.bench_with_input(BenchmarkId::new(C::NAME, n), &n, |b, _| {
        let table = table.get_or_init(|| filled::<C>(n));
        b.iter_custom(|iters| {
            let mut elapsed = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let k = left.min(chunk);
                let first = next;
                let start = Instant::now();
                for id in first..first + k {
                    black_box(table.launch_block(id, true));
                }
                elapsed += start.elapsed();
                for id in first..first + k {
                    table.revoke(id);
                }
                next += k;
                left -= k;
            }
            elapsed
        })
    });
    launch.finish();
}

fn scale(c: &mut Criterion) {
    for &n in support::Mode::from_env().scale_sizes() {
        for_each_contestant!(at_size(c, n));
    }
    write_memory();
}

/// Writes the memory figures next to criterion's own output.
fn write_memory() {
    let dir = bench_report::criterion_dir();
    let rows = MEMORY.lock().unwrap_or_else(|p| p.into_inner());
    let json = serde_json::to_string(&*rows).expect("memory rows are plain numbers and names");
    if std::fs::create_dir_all(&dir).is_ok() {
        let path = dir.join(bench_report::MEMORY_FILE);
        if let Err(error) = std::fs::write(&path, json) {
            eprintln!("could not write {}: {error}", path.display());
        }
    }
}

criterion_group! {
    name = benches;
    config = support::criterion();
    targets = scale
}
criterion_main!(benches);
