//! A worker process's counters and latencies, kept between two `stats`
//! messages: [`Counters::take`] turns them into one and starts afresh.

use super::message::{Counts, OpCounts, PgOp, Stats};
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::time::Instant;

/// Latencies are kept in whole µs, up to 10 minutes.
pub const MAX_MICROS: u64 = 600_000_000;

/// A latency histogram in µs, from 1 µs to [`MAX_MICROS`].
pub fn micros_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_MICROS, 2).expect("valid bounds")
}

/// Calls and latencies of one operation since the last `stats`.
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
            micros: micros_histogram(),
        }
    }

    fn counts(&self) -> OpCounts {
        OpCounts {
            n: self.count,
            errors: self.errors,
            hist: self
                .micros
                .iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_at_value()))
                .collect(),
        }
    }
}

/// What a worker process did since its last `stats`.
#[derive(Default)]
pub struct Counters {
    ops: BTreeMap<PgOp, OpStats>,
    pub counts: Counts,
    first_error: Option<String>,
}

impl Counters {
    /// Times one call of `op` that began at `began`.
    pub fn record(&mut self, op: PgOp, began: Instant, ok: bool) {
        let stats = self.ops.entry(op).or_insert_with(OpStats::new);
        stats.count += 1;
        if !ok {
            stats.errors += 1;
        }
        let micros = u64::try_from(began.elapsed().as_micros()).unwrap_or(u64::MAX);
        stats.micros.saturating_record(micros.max(1));
    }

    /// Keeps `error` if it is the first since the last `stats`.
    pub fn error(&mut self, error: impl std::fmt::Display) {
        if self.first_error.is_none() {
            self.first_error = Some(error.to_string());
        }
    }

    /// The counters as one `stats` message, then zeroed.
    pub fn take(&mut self) -> Stats {
        let taken = std::mem::take(self);
        Stats {
            ops: taken
                .ops
                .iter()
                .map(|(op, stats)| (*op, stats.counts()))
                .collect(),
            counts: taken.counts,
            first_error: taken.first_error,
        }
    }
}
