//! The simulated table: one record per id, one fence counter, and each
//! statement's effect computed by `spec::fenced_step` at the moment the
//! simulator applies it. Every applied write is logged, which is what the
//! simulation's properties are checked against.

use super::row::{Params, Row};
use crate::error::Error;
use crate::sql::{phase_of, state_code};
use crate::store::Which;
use async_tasks_recorder::spec::{
    Epoch, Fence, FencedOp, FencedResponse, Outcome, Phase, Record, fenced_step,
};
use std::collections::BTreeMap;
use tokio_postgres::types::Type;

/// A microsecond on the database clock.
pub type Micros = i64;

/// One stored row, as the real table holds it.
#[derive(Clone, Copy, Debug, Eq, PartialEq, Hash)]
pub struct Stored {
    pub phase: Phase,
    pub epoch: Epoch,
    pub fence: Fence,
    pub success_fence: Option<Fence>,
    /// When the lease runs out, for a `Working` or `Revoking` row.
    pub lease_until: Option<Micros>,
}

/// An applied write, in the order the table applied them.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct Applied {
    /// The id's binary key.
    pub key: Vec<u8>,
    pub which: Which,
    /// The fence the write carried, or drew (a grant).
    pub fence: Fence,
    /// The row after it.
    pub row: Stored,
    /// When it applied.
    pub at: Micros,
}

/// The table: rows by the binary key of their id (so ids sort by their
/// encoding: non-negative integers in numeric order, text in byte order).
#[derive(Clone, Debug)]
pub struct Table {
    /// The id column's type.
    key_type: Type,
    rows: BTreeMap<Vec<u8>, Stored>,
    /// The fence sequence's last value (`CACHE 1`: no value is skipped
    /// except by a statement that draws one and then does nothing).
    fences: Fence,
    /// Every write that changed or matched a row.
    pub(crate) applied: Vec<Applied>,
    /// The known-bad finish: its guard has no fence.
    pub(crate) finish_ignores_fence: bool,
    /// The known-bad read: it returns each row as it was before its latest
    /// write (a stale replica, a cache).
    pub(crate) stale_reads: bool,
    /// Each row before its latest write, for the stale read.
    previous: BTreeMap<Vec<u8>, Stored>,
}

impl Table {
    /// An empty table whose ids have column type `key_type`.
    pub(crate) fn new(key_type: Type) -> Table {
        Table {
            key_type,
            rows: BTreeMap::new(),
            fences: 0,
            applied: Vec::new(),
            finish_ignores_fence: false,
            stale_reads: false,
            previous: BTreeMap::new(),
        }
    }

    /// The rows now.
    pub fn rows(&self) -> &BTreeMap<Vec<u8>, Stored> {
        &self.rows
    }

    /// The log of applied writes.
    pub fn applied(&self) -> &[Applied] {
        &self.applied
    }

    /// The spec's record of `row` at `now`.
    fn record(row: &Stored, now: Micros) -> Record {
        Record {
            phase: row.phase,
            epoch: row.epoch,
            fence: row.fence,
            lapsed: row.lease_until.is_some_and(|until| until <= now),
        }
    }

    fn next_fence(&mut self) -> Fence {
        self.fences += 1;
        self.fences
    }

    /// Applies statement `which` with `params` at database time `now`; a
    /// row whose lock a frozen holder keeps is in `locked` (a write that
    /// skips locked rows skips it). Returns the rows the statement returns.
    pub(crate) fn apply(
        &mut self,
        which: Which,
        params: &Params,
        now: Micros,
        locked: &dyn Fn(&[u8]) -> bool,
    ) -> Result<Vec<Row>, Error> {
        match which {
            Which::Read => {
                let key = params.raw(1)?;
                let now = now + params.get::<i64>(2)?;
                let row = match self.stale_reads {
                    true => self.previous.get(&key).or(self.rows.get(&key)),
                    false => self.rows.get(&key),
                };
                let Some(row) = row else {
                    return Ok(Vec::new());
                };
                let lapsed = Self::record(row, now).lapsed;
                let success = row.success_fence.map(|f| f as i64);
                Ok(vec![Row::of(&[
                    (&state_code(row.phase), Type::INT2),
                    (&(row.epoch as i64), Type::INT8),
                    (&(row.fence as i64), Type::INT8),
                    (&success, Type::INT8),
                    (&lapsed, Type::BOOL),
                ])?])
            }
            Which::ClaimNew => {
                let key = params.raw(1)?;
                let lease = params.get::<i64>(2)?;
                // `nextval` in `VALUES` is drawn before the conflict check.
                let fence = self.next_fence();
                if self.rows.contains_key(&key) {
                    return Ok(Vec::new());
                }
                self.grant(
                    key,
                    Record::NEW,
                    FencedOp::Launch { fence },
                    now + lease,
                    now,
                )
            }
            Which::Claim | Which::RevokeBegin => {
                let key = params.raw(1)?;
                let lease = params.get::<i64>(2)?;
                let judged = now + params.get::<i64>(3)?;
                let Some(row) = self.rows.get(&key).copied() else {
                    return Ok(Vec::new());
                };
                let record = Self::record(&row, judged);
                // The fence is drawn only for a row the guard admits.
                let fence = self.fences + 1;
                let op = match which {
                    Which::Claim => FencedOp::Launch { fence },
                    _ => FencedOp::BeginRevoke { fence },
                };
                match fenced_step(record, op).1 {
                    FencedResponse::Step(async_tasks_recorder::spec::Response::Accepted) => {
                        self.next_fence();
                        let success = row.success_fence;
                        let rows = self.grant(key.clone(), record, op, now + lease, now)?;
                        if let Some(row) = self.rows.get_mut(&key) {
                            row.success_fence = success;
                        }
                        Ok(rows)
                    }
                    _ => Ok(Vec::new()),
                }
            }
            #[cfg(feature = "test-hooks")]
            Which::ClaimByClientClock => Err(Error::Schema(
                "the simulated database has no client-clock claim".into(),
            )),
            Which::Renew => {
                let key = params.raw(1)?;
                let fence = params.get::<i64>(2)? as Fence;
                let lease = params.get::<i64>(3)?;
                self.fenced(key, which, FencedOp::Renew { fence }, now, |row| {
                    row.lease_until = Some(now + lease);
                })
            }
            Which::Finish | Which::RevokeEnd => {
                let key = params.raw(1)?;
                let fence = params.get::<i64>(2)? as Fence;
                let op = if which == Which::Finish {
                    let state = phase_of(params.get::<i16>(3)?);
                    let outcome = if state == Phase::Success {
                        Outcome::Ok
                    } else {
                        Outcome::Err
                    };
                    // The known-bad finish matches whichever attempt holds the row.
                    let fence = match self.rows.get(&key) {
                        Some(row) if self.finish_ignores_fence => row.fence,
                        _ => fence,
                    };
                    FencedOp::Finish { fence, outcome }
                } else {
                    let ok = params.get::<bool>(3)?;
                    let outcome = if ok { Outcome::Ok } else { Outcome::Err };
                    FencedOp::FinishRevoke { fence, outcome }
                };
                self.fenced(key, which, op, now, |row| {
                    row.lease_until = None;
                    // `success_fence = fence`: the row's fence column.
                    if row.phase == Phase::Success && which == Which::Finish {
                        row.success_fence = Some(row.fence);
                    }
                })
            }
            Which::Abandon => {
                let key = params.raw(1)?;
                let fence = params.get::<i64>(2)? as Fence;
                if locked(&key) {
                    return Ok(Vec::new());
                }
                let holding = self.rows.get(&key).map(|row| row.phase);
                let op = match holding {
                    Some(Phase::Revoking) => FencedOp::FinishRevoke {
                        fence,
                        outcome: Outcome::Err,
                    },
                    _ => FencedOp::Finish {
                        fence,
                        outcome: Outcome::Err,
                    },
                };
                let rows = self.fenced(key, which, op, now, |row| row.lease_until = None)?;
                self.returning_state(rows)
            }
            Which::Confirm => {
                let key = params.raw(1)?;
                if let Some(row) = self.rows.get(&key).copied() {
                    self.log(key, which, row.fence, row, now);
                }
                Ok(Vec::new())
            }
            Which::ExpireOne => {
                let key = params.raw(1)?;
                let judged = now + params.get::<i64>(2)?;
                match self.expire(&key, judged, now) {
                    Some(row) => Ok(vec![Row::of(&[(&state_code(row.phase), Type::INT2)])?]),
                    None => Ok(Vec::new()),
                }
            }
            Which::Sweep => {
                let judged = now + params.get::<i64>(1)?;
                // PostgreSQL refuses a negative `LIMIT` (the differential
                // test found the simulator sweeping nothing instead).
                let limit =
                    usize::try_from(params.get::<i64>(2)?).map_err(|_| Error::Simulated {
                        code: "2201W",
                        fatal: false,
                    })?;
                let mut lapsed: Vec<(Micros, Vec<u8>)> = self
                    .rows
                    .iter()
                    .filter(|(key, row)| Self::record(row, judged).lapsed && !locked(key))
                    .map(|(key, row)| (row.lease_until.unwrap_or(0), key.clone()))
                    .collect();
                lapsed.sort();
                let mut out = Vec::new();
                for (_, key) in lapsed.into_iter().take(limit) {
                    if let Some(row) = self.expire(&key, judged, now) {
                        out.push(Row::of(&[
                            (&RawKey(key), self.key_type.clone()),
                            (&state_code(row.phase), Type::INT2),
                        ])?);
                    }
                }
                Ok(out)
            }
            Which::List | Which::PageFirst | Which::PageAfter => {
                let codes = [params.get::<Option<i16>>(1)?, params.get::<Option<i16>>(2)?];
                let limit = match which {
                    Which::List => usize::MAX,
                    _ => params.get::<i64>(3)?.max(0) as usize,
                };
                let after = match which {
                    Which::PageAfter => Some(params.raw(4)?),
                    _ => None,
                };
                self.rows
                    .iter()
                    .filter(|(key, row)| {
                        codes.contains(&Some(state_code(row.phase)))
                            && after
                                .as_ref()
                                .is_none_or(|after| key.as_slice() > after.as_slice())
                    })
                    .take(limit)
                    .map(|(key, _)| Row::of(&[(&RawKey(key.clone()), self.key_type.clone())]))
                    .collect()
            }
            Which::Count => {
                let codes = [params.get::<Option<i16>>(1)?, params.get::<Option<i16>>(2)?];
                let first = self.count(codes[0]);
                // The statement adds the two counts: one phase passed twice
                // counts twice, as the real one does.
                let count = first + self.count(codes[1]);
                Ok(vec![Row::of(&[(&Some(count), Type::INT8)])?])
            }
        }
    }

    /// Rows whose state is `code` (none for NULL, as `state = NULL` is).
    fn count(&self, code: Option<i16>) -> i64 {
        self.rows
            .values()
            .filter(|row| Some(state_code(row.phase)) == code)
            .count() as i64
    }

    /// Grants `op` (with its fence) from `record`, leased until `until`.
    fn grant(
        &mut self,
        key: Vec<u8>,
        record: Record,
        op: FencedOp,
        until: Micros,
        now: Micros,
    ) -> Result<Vec<Row>, Error> {
        let (next, response) = fenced_step(record, op);
        if !matches!(
            response,
            FencedResponse::Step(async_tasks_recorder::spec::Response::Accepted)
        ) {
            return Ok(Vec::new());
        }
        let row = Stored {
            phase: next.phase,
            epoch: next.epoch,
            fence: next.fence,
            success_fence: None,
            lease_until: Some(until),
        };
        self.rows.insert(key.clone(), row);
        let which = match next.phase {
            Phase::Revoking => Which::RevokeBegin,
            _ => Which::Claim,
        };
        self.log(key, which, next.fence, row, now);
        Ok(vec![Row::of(&[
            (&(next.fence as i64), Type::INT8),
            (&(next.epoch as i64), Type::INT8),
        ])?])
    }

    /// A fenced write `op` on `key`'s row: if `fenced_step` matches it, the
    /// row takes the spec's record and `and` adjusts what the spec does not
    /// hold (lease, success fence); returns the row's epoch.
    fn fenced(
        &mut self,
        key: Vec<u8>,
        which: Which,
        op: FencedOp,
        now: Micros,
        and: impl FnOnce(&mut Stored),
    ) -> Result<Vec<Row>, Error> {
        let Some(row) = self.rows.get(&key).copied() else {
            return Ok(Vec::new());
        };
        let (next, response) = fenced_step(Self::record(&row, now), op);
        if matches!(response, FencedResponse::Stale) {
            return Ok(Vec::new());
        }
        let mut after = Stored {
            phase: next.phase,
            epoch: next.epoch,
            fence: next.fence,
            ..row
        };
        and(&mut after);
        self.rows.insert(key.clone(), after);
        let fence = match op {
            FencedOp::Renew { fence }
            | FencedOp::Finish { fence, .. }
            | FencedOp::FinishRevoke { fence, .. } => fence,
            _ => row.fence,
        };
        self.log(key, which, fence, after, now);
        Ok(vec![Row::of(&[(&(after.epoch as i64), Type::INT8)])?])
    }

    /// `rows` of a fenced write as the abandon returns them: the state.
    fn returning_state(&self, rows: Vec<Row>) -> Result<Vec<Row>, Error> {
        match self.applied.last() {
            Some(last) if !rows.is_empty() => {
                Ok(vec![Row::of(&[(&state_code(last.row.phase), Type::INT2)])?])
            }
            _ => Ok(Vec::new()),
        }
    }

    /// The sweep of one row lapsed by `judged`: the row after, if it moved.
    fn expire(&mut self, key: &[u8], judged: Micros, now: Micros) -> Option<Stored> {
        let row = *self.rows.get(key)?;
        let (next, response) = fenced_step(Self::record(&row, judged), FencedOp::Expire);
        if response != FencedResponse::Expired {
            return None;
        }
        let after = Stored {
            phase: next.phase,
            lease_until: None,
            ..row
        };
        self.rows.insert(key.to_vec(), after);
        self.log(key.to_vec(), Which::Sweep, row.fence, after, now);
        Some(after)
    }

    fn log(&mut self, key: Vec<u8>, which: Which, fence: Fence, row: Stored, at: Micros) {
        if let Some(before) = self.applied.iter().rev().find(|e| e.key == key) {
            self.previous.insert(key.clone(), before.row);
        }
        self.applied.push(Applied {
            key,
            which,
            fence,
            row,
            at,
        });
    }
}

/// An id's binary key, returned as the id column: decoded by the client as
/// its own key type (the bytes are that type's binary format).
#[derive(Debug)]
struct RawKey(Vec<u8>);

impl tokio_postgres::types::ToSql for RawKey {
    fn to_sql(
        &self,
        _: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<tokio_postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        out.extend_from_slice(&self.0);
        Ok(tokio_postgres::types::IsNull::No)
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    tokio_postgres::types::to_sql_checked!();
}
