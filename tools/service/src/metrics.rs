//! `GET /metrics`: ids per state, and operations served, in total and per
//! second, in the Prometheus text format. The rate is taken over the last
//! [`WINDOW`] from samples of the totals kept at scrape time, so no
//! background task runs for it.

use crate::backend::Counts;
use std::collections::VecDeque;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// What the rate is averaged over.
pub const WINDOW: Duration = Duration::from_secs(10);

/// An operation the service counts.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum Op {
    /// `PUT /payments/{id}`.
    Start,
    /// `GET /payments/{id}`.
    Read,
    /// `DELETE /payments/{id}`.
    Revoke,
    /// `GET /payments`.
    List,
}

const OPS: [Op; 4] = [Op::Start, Op::Read, Op::Revoke, Op::List];

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Start => "start",
            Op::Read => "read",
            Op::Revoke => "revoke",
            Op::List => "list",
        }
    }
}

/// The counters of one process.
#[derive(Default)]
pub struct Metrics {
    served: [AtomicU64; 4],
    samples: Mutex<VecDeque<(Instant, [u64; 4])>>,
}

impl Metrics {
    /// Counts one `op`.
    pub fn count(&self, op: Op) {
        self.served[op as usize].fetch_add(1, Ordering::Relaxed);
    }

    fn totals(&self) -> [u64; 4] {
        std::array::from_fn(|n| self.served[n].load(Ordering::Relaxed))
    }

    /// Operations per second of each op over about the last [`WINDOW`]
    /// (since the first sample, while the process is younger), taken `now`.
    pub fn per_second(&self, now: Instant) -> [f64; 4] {
        let totals = self.totals();
        let mut samples = self.samples.lock().unwrap_or_else(PoisonError::into_inner);
        // Keep the newest sample at least WINDOW old, and those after it.
        while samples.len() > 1 && now.duration_since(samples[1].0) >= WINDOW {
            samples.pop_front();
        }
        let rates = match samples.front() {
            Some((then, before)) if now > *then => {
                let secs = now.duration_since(*then).as_secs_f64();
                std::array::from_fn(|n| totals[n].saturating_sub(before[n]) as f64 / secs)
            }
            _ => [0.0; 4],
        };
        if samples
            .back()
            .is_none_or(|(last, _)| now.duration_since(*last) >= Duration::from_secs(1))
        {
            samples.push_back((now, totals));
        }
        rates
    }

    /// The exposition: `backend` is `memory` or `postgres`.
    pub fn render(&self, backend: &str, counts: Counts, now: Instant) -> String {
        let rates = self.per_second(now);
        let totals = self.totals();
        let mut text = String::new();
        let _ = writeln!(text, "# HELP payments_ids Payment ids per state.");
        let _ = writeln!(text, "# TYPE payments_ids gauge");
        for (state, count) in [
            ("working", counts.working),
            ("success", counts.success),
            ("failed", counts.failed),
        ] {
            let _ = writeln!(
                text,
                "payments_ids{{backend=\"{backend}\",state=\"{state}\"}} {count}"
            );
        }
        let help = format!(
            "Operations per second served by this process over the last {} s.",
            WINDOW.as_secs()
        );
        let families = [
            (
                "payments_operations_total",
                "Operations served by this process.",
                "counter",
                totals.map(|n| n.to_string()),
            ),
            (
                "payments_operations_per_second",
                help.as_str(),
                "gauge",
                rates.map(|r| format!("{r:.3}")),
            ),
        ];
        for (name, help, kind, values) in families {
            let _ = writeln!(text, "# HELP {name} {help}");
            let _ = writeln!(text, "# TYPE {name} {kind}");
            for op in OPS {
                let value = &values[op as usize];
                let _ = writeln!(text, "{name}{{op=\"{}\"}} {value}", op.name());
            }
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_is_taken_over_the_window_since_an_older_sample() {
        let metrics = Metrics::default();
        let t0 = Instant::now();
        assert_eq!(metrics.per_second(t0), [0.0; 4]);
        for _ in 0..20 {
            metrics.count(Op::Start);
        }
        metrics.count(Op::Read);
        // 20 starts in the 2 s since the first sample.
        let rates = metrics.per_second(t0 + Duration::from_secs(2));
        assert_eq!(rates, [10.0, 0.5, 0.0, 0.0]);
        // Much later, with nothing served: the old samples age out.
        let later = t0 + Duration::from_secs(60);
        metrics.per_second(later);
        assert_eq!(metrics.per_second(later + Duration::from_secs(5)), [0.0; 4]);
    }

    #[test]
    fn every_sample_line_is_a_name_labels_and_a_number() {
        let metrics = Metrics::default();
        metrics.count(Op::Revoke);
        let counts = Counts {
            working: 1,
            success: 2,
            failed: 3,
        };
        let text = metrics.render("memory", counts, Instant::now());
        assert!(text.contains("payments_ids{backend=\"memory\",state=\"failed\"} 3\n"));
        assert!(text.contains("payments_operations_total{op=\"revoke\"} 1\n"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (series, value) = line.rsplit_once(' ').expect(line);
            assert!(series.ends_with('}') && series.contains('{'), "{line}");
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
    }
}
