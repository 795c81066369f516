//! The background sweeper: one task per handle that runs the sweep every
//! period, so an id whose holder died reads `Failed` (a lapsed revoke,
//! `Success`) within its lease plus one period, even if no caller touches
//! it. Any number of replicas may run one; the sweep is idempotent and
//! skips rows another statement holds.

use crate::db::Key;
use crate::error::Error;
use crate::recorder::PgRecorder;
use std::num::NonZeroU32;
use std::time::Duration;
use tokio_util::sync::{CancellationToken, DropGuard};

/// A running sweeper; it stops when this handle is dropped.
pub struct Sweeper {
    _stop: DropGuard,
}

impl<K: Key> PgRecorder<K> {
    /// Starts a sweeper on the current tokio runtime: every `period`, the
    /// sweep moves up to `limit` lapsed rows, again at once while it moves
    /// a full `limit`. A failed sweep (a lost connection, say) is tried
    /// again the next period. Who runs it: at least one replica, with a
    /// period of about a tenth of the lease, so a dead holder's id reads
    /// `Working` for at most its lease plus one period.
    pub fn sweep_every(&self, period: Duration, limit: NonZeroU32) -> Result<Sweeper, Error> {
        if period.is_zero() {
            return Err(Error::BadDuration(period));
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
        let limit = i64::from(limit.get());
        let stop = CancellationToken::new();
        let recorder = self.clone();
        let stopped = stop.clone();
        runtime.spawn(async move {
            loop {
                tokio::select! {
                    biased;
                    _ = stopped.cancelled() => return,
                    _ = tokio::time::sleep(period) => {}
                }
                loop {
                    let swept = tokio::select! {
                        biased;
                        _ = stopped.cancelled() => return,
                        swept = recorder.sweep(limit) => swept,
                    };
                    match swept {
                        Ok(moved) if moved.len() as i64 >= limit => continue,
                        _ => break,
                    }
                }
            }
        });
        Ok(Sweeper {
            _stop: stop.drop_guard(),
        })
    }
}
