//! What the worker processes' messages add up to: the acknowledged
//! successes, `Stale` finishes and zombies' wakes (with who sent them and
//! when), and the merged counters and latencies.

use super::counters::micros_histogram;
use super::message::{Acked, Arrival, Counts, Message, PgOp, StaleFinish};
use hdrhistogram::Histogram;
use std::collections::BTreeMap;

/// One operation across every process.
pub struct OpTotals {
    pub count: u64,
    pub errors: u64,
    /// Latencies in µs.
    pub micros: Histogram<u64>,
}

/// Merged messages of every worker process.
#[derive(Default)]
pub struct Totals {
    pub ops: BTreeMap<PgOp, OpTotals>,
    pub counts: Counts,
    pub first_error: Option<String>,
    pub acked: Vec<Arrival<Acked>>,
    pub stale: Vec<Arrival<StaleFinish>>,
    /// Each zombie's wake after its freeze.
    pub woken: Vec<Arrival<()>>,
}

impl Totals {
    pub fn take(&mut self, arrival: Arrival<Message>) {
        let Arrival { from, at, message } = arrival;
        match message {
            Message::Acked(acked) => self.acked.push(Arrival {
                from,
                at,
                message: acked,
            }),
            Message::Stale(stale) => self.stale.push(Arrival {
                from,
                at,
                message: stale,
            }),
            Message::Woke => self.woken.push(Arrival {
                from,
                at,
                message: (),
            }),
            Message::Stats(stats) => {
                for (op, counts) in stats.ops {
                    let totals = self.ops.entry(op).or_insert_with(|| OpTotals {
                        count: 0,
                        errors: 0,
                        micros: micros_histogram(),
                    });
                    totals.count += counts.n;
                    totals.errors += counts.errors;
                    for (value, count) in counts.hist {
                        let _ = totals.micros.record_n(value.max(1), count);
                    }
                }
                self.counts += stats.counts;
                if self.first_error.is_none() {
                    self.first_error = stats.first_error;
                }
            }
        }
    }

    /// Every operation of every process.
    pub fn operations(&self) -> u64 {
        self.ops.values().map(|o| o.count).sum()
    }

    /// The `Stale` finishes a zombie said after its wake: the zombie bit.
    /// (A stopped process's messages wait in its pipe, so arrival order is
    /// the order each process wrote them.)
    pub fn zombie_stale_finishes(&self) -> usize {
        self.stale
            .iter()
            .filter(|s| self.woken.iter().any(|w| w.from == s.from && s.at >= w.at))
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::postgres::message::{Incarnation, OpCounts, TaskResult};
    use std::time::Instant;

    fn arrival(line: &str) -> Option<Arrival<Message>> {
        Some(Arrival {
            from: Incarnation {
                slot: 1,
                generation: 2,
            },
            at: Instant::now(),
            message: Message::parse(line)?,
        })
    }

    #[test]
    fn worker_messages_are_merged() {
        let mut totals = Totals::default();
        let lines = [
            r#"{"kind":"acked","id":5,"epoch":1,"fence":42}"#,
            r#"{"kind":"stale","id":6,"fence":43,"ms_since_claim":12,"task":"success"}"#,
            r#"{"kind":"stale","id":7,"fence":44,"ms_since_claim":13,"task":"failure"}"#,
            r#"{"kind":"stats","ops":{"claim":{"n":3,"errors":1,"hist":[[100,2],[900,1]]}},
                "counts":{"successes":1,"failures":0,"refused":0,"stale":1,"rejected_writes":0,
                "reconnects":0,"revokes":0},"first_error":"claim: db error"}"#,
            "garbage",
        ];
        for arrival in lines.iter().filter_map(|line| arrival(line)) {
            totals.take(arrival);
        }
        let acked: Vec<Acked> = totals.acked.iter().map(|a| a.message).collect();
        assert_eq!(
            acked,
            [Acked {
                id: 5,
                epoch: 1,
                fence: 42
            }]
        );
        let stale: Vec<(i64, u64, TaskResult)> = totals
            .stale
            .iter()
            .map(|s| (s.message.id, s.message.ms_since_claim, s.message.task))
            .collect();
        assert_eq!(
            stale,
            [(6, 12, TaskResult::Success), (7, 13, TaskResult::Failure)]
        );
        assert_eq!(
            totals.stale[0].from,
            Incarnation {
                slot: 1,
                generation: 2
            }
        );
        assert_eq!(totals.operations(), 3);
        assert_eq!(totals.counts.successes, 1);
        assert_eq!(totals.counts.stale, 1);
        assert_eq!(totals.first_error.as_deref(), Some("claim: db error"));
        let claim = &totals.ops[&PgOp::Claim];
        assert_eq!((claim.count, claim.errors), (3, 1));
        assert_eq!(claim.micros.len(), 3);
    }

    #[test]
    fn counters_of_several_stats_add_up_and_the_first_error_stays() {
        let mut totals = Totals::default();
        for (n, error) in [(2, Some("first")), (5, Some("second")), (1, None)] {
            let stats = crate::postgres::message::Stats {
                ops: BTreeMap::from([(
                    PgOp::Finish,
                    OpCounts {
                        n,
                        errors: 0,
                        hist: vec![(10, n)],
                    },
                )]),
                counts: Counts {
                    revokes: n,
                    ..Counts::default()
                },
                first_error: error.map(String::from),
            };
            totals.take(Arrival {
                from: Incarnation {
                    slot: 0,
                    generation: 0,
                },
                at: Instant::now(),
                message: Message::Stats(stats),
            });
        }
        assert_eq!(totals.ops[&PgOp::Finish].count, 8);
        assert_eq!(totals.ops[&PgOp::Finish].micros.len(), 8);
        assert_eq!(totals.counts.revokes, 8);
        assert_eq!(totals.first_error.as_deref(), Some("first"));
    }

    #[test]
    fn a_zombie_bites_with_a_stale_finish_it_said_after_its_wake() {
        let stale = r#"{"kind":"stale","id":6,"fence":43,"ms_since_claim":12,"task":"success"}"#;
        let zombie = Incarnation {
            slot: 1,
            generation: 2,
        };
        let other = Incarnation {
            slot: 0,
            generation: 0,
        };
        let start = Instant::now();
        let mut totals = Totals::default();
        let mut say = |ms: u64, from: Incarnation, line: &str| {
            totals.take(Arrival {
                from,
                at: start + std::time::Duration::from_millis(ms),
                message: Message::parse(line).expect("a message"),
            })
        };
        say(0, zombie, stale);
        say(1, other, r#"{"kind":"woke"}"#);
        say(2, zombie, stale);
        say(3, zombie, r#"{"kind":"woke"}"#);
        say(4, zombie, stale);
        say(5, other, stale);
        // The zombie's third and the other process's, each after its wake.
        assert_eq!(totals.zombie_stale_finishes(), 2);
    }
}
