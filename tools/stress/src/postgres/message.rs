//! The contract between a worker process and the coordinator: each
//! [`Message`] is one JSON object on one line of the worker's stdout,
//! written with [`Message::send`] and read back with [`Message::parse`].
//! A line that is not a message (a half-written line of a process killed
//! with -9, say) is ignored.
//!
//! Layout (internally tagged by `kind`):
//!
//! ```text
//! {"kind":"acked","id":5,"epoch":1,"fence":42}
//! {"kind":"stale","id":6,"fence":43,"ms_since_claim":12,"task":"success"}
//! {"kind":"woke"}
//! {"kind":"stats","ops":{"claim":{"n":3,"errors":1,"hist":[[100,2],[900,1]]}},
//!  "counts":{"successes":1,"failures":0,...},"first_error":null}
//! ```
//!
//! A worker sends `acked` once per success it committed, `stale` once per
//! finish answered `Stale`, `woke` when it goes on after a freeze, and
//! `stats` (its counters since the last `stats`) every second and when it
//! ends, so a process killed with -9 loses at most a second of counters
//! and no acknowledgement.
//!
//! The other way, the coordinator writes [`Order`]s, one JSON line each,
//! on the worker's stdin: `{"kind":"freeze","ms":4500}`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write as _;
use std::ops::AddAssign;
use std::time::Instant;

/// One line from a worker process.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Message {
    /// A success whose ledger row and fenced finish were committed.
    Acked(Acked),
    /// A finish the database answered `Stale`.
    Stale(StaleFinish),
    /// The process goes on after the freeze of an [`Order::Freeze`].
    Woke,
    /// Counters and latencies since the previous `stats`.
    Stats(Stats),
}

/// One line from the coordinator on a worker's stdin.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Order {
    /// Become a zombie: right after the next claim granted to any of its
    /// loops, the whole process stops (SIGSTOP) for `ms`, holding that
    /// attempt, then goes on (SIGCONT).
    Freeze { ms: u64 },
}

impl Order {
    /// The order as one line, without its newline.
    pub fn line(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The order on `line`, if it holds one.
    pub fn parse(line: &str) -> Option<Order> {
        serde_json::from_str(line).ok()
    }
}

/// A committed success: the attempt's id, epoch and fence.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct Acked {
    pub id: i64,
    pub epoch: i64,
    pub fence: i64,
}

/// A finish answered `Stale`.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaleFinish {
    pub id: i64,
    pub fence: i64,
    /// From the claim to the finish's answer.
    pub ms_since_claim: u64,
    /// What the task returned. A failure's finish that was in doubt reads
    /// `Stale` once the row has moved on, lease or no lease: only a
    /// success's `Stale` says that its live lease was taken.
    pub task: TaskResult,
}

/// What a task returned before its finish.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TaskResult {
    Success,
    Failure,
}

/// The operations a worker times, in the order reports list them.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum PgOp {
    Claim,
    Finish,
    List,
    Query,
    Revoke,
    Sweep,
}

impl PgOp {
    /// The name in messages, reports and error texts.
    pub fn name(self) -> &'static str {
        match self {
            PgOp::Claim => "claim",
            PgOp::Finish => "finish",
            PgOp::List => "list",
            PgOp::Query => "query",
            PgOp::Revoke => "revoke",
            PgOp::Sweep => "sweep",
        }
    }
}

/// A worker's counters and latencies over one period.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
pub struct Stats {
    pub ops: BTreeMap<PgOp, OpCounts>,
    pub counts: Counts,
    /// The worker's first error since the previous `stats`.
    pub first_error: Option<String>,
}

/// One operation over one period.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, Eq)]
pub struct OpCounts {
    /// Calls, including the failed ones.
    pub n: u64,
    /// Calls that returned an error.
    pub errors: u64,
    /// The latency histogram in µs, as `[value, count]` pairs.
    pub hist: Vec<(u64, u64)>,
}

/// What a worker's tasks did, beside the operations it timed.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Successes applied (acknowledged).
    pub successes: u64,
    /// Failures applied.
    pub failures: u64,
    /// Claims refused by the id's state.
    pub refused: u64,
    /// Finishes answered `Stale`.
    pub stale: u64,
    /// Successes whose side effect the fence rolled back.
    pub rejected_writes: u64,
    /// Ledger connections opened in place of a broken one.
    pub reconnects: u64,
    /// Revokes completed.
    pub revokes: u64,
}

impl AddAssign for Counts {
    fn add_assign(&mut self, other: Counts) {
        self.successes += other.successes;
        self.failures += other.failures;
        self.refused += other.refused;
        self.stale += other.stale;
        self.rejected_writes += other.rejected_writes;
        self.reconnects += other.reconnects;
        self.revokes += other.revokes;
    }
}

impl Message {
    /// Writes the message as one line on stdout, flushed at once so that a
    /// kill -9 right after loses nothing already said.
    pub fn send(&self) {
        let Ok(line) = serde_json::to_string(self) else {
            return;
        };
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }

    /// The message on `line`, if it holds one.
    pub fn parse(line: &str) -> Option<Message> {
        serde_json::from_str(line).ok()
    }
}

/// Which worker process: its slot, and its generation (a fresh process
/// started in a slot after a kill has a new one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Incarnation {
    pub slot: usize,
    pub generation: u64,
}

/// A message as the coordinator received it: from whom and when.
#[derive(Debug, Clone)]
pub struct Arrival<M> {
    pub from: Incarnation,
    pub at: Instant,
    pub message: M,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_message_is_one_json_line_that_reads_back_the_same() {
        let stats = Stats {
            ops: BTreeMap::from([(
                PgOp::Claim,
                OpCounts {
                    n: 3,
                    errors: 1,
                    hist: vec![(100, 2), (900, 1)],
                },
            )]),
            counts: Counts {
                successes: 1,
                stale: 1,
                ..Counts::default()
            },
            first_error: Some("claim: connection closed".into()),
        };
        for message in [
            Message::Acked(Acked {
                id: 5,
                epoch: 1,
                fence: 42,
            }),
            Message::Stale(StaleFinish {
                id: 6,
                fence: 43,
                ms_since_claim: 12,
                task: TaskResult::Success,
            }),
            Message::Woke,
            Message::Stats(stats),
        ] {
            let line = serde_json::to_string(&message).expect("serialises");
            assert!(!line.contains('\n'), "{line}");
            assert_eq!(Message::parse(&line), Some(message));
        }
    }

    #[test]
    fn the_layout_is_the_documented_one() {
        let acked = r#"{"kind":"acked","id":5,"epoch":1,"fence":42}"#;
        let stale = r#"{"kind":"stale","id":6,"fence":43,"ms_since_claim":12,"task":"failure"}"#;
        assert_eq!(
            Message::parse(acked),
            Some(Message::Acked(Acked {
                id: 5,
                epoch: 1,
                fence: 42
            }))
        );
        assert_eq!(
            Message::parse(stale),
            Some(Message::Stale(StaleFinish {
                id: 6,
                fence: 43,
                ms_since_claim: 12,
                task: TaskResult::Failure,
            }))
        );
    }

    #[test]
    fn a_freeze_order_is_one_documented_json_line() {
        let order = Order::Freeze { ms: 4500 };
        assert_eq!(order.line(), r#"{"kind":"freeze","ms":4500}"#);
        assert_eq!(Order::parse(&order.line()), Some(order));
        assert_eq!(Order::parse(r#"{"kind":"freeze"}"#), None);
        assert_eq!(Message::parse(r#"{"kind":"woke"}"#), Some(Message::Woke));
    }

    #[test]
    fn each_operation_is_named_in_messages_as_in_reports() {
        for op in [
            PgOp::Claim,
            PgOp::Finish,
            PgOp::List,
            PgOp::Query,
            PgOp::Revoke,
            PgOp::Sweep,
        ] {
            let json = serde_json::to_string(&op).expect("serialises");
            assert_eq!(json, format!("\"{}\"", op.name()));
        }
    }

    #[test]
    fn lines_that_are_not_messages_are_ignored() {
        for line in [
            "",
            "garbage",
            "ok 5 1 42",
            r#"{"kind":"acked","id":5"#,
            r#"{"kind":"unknown"}"#,
        ] {
            assert_eq!(Message::parse(line), None, "{line}");
        }
    }
}
