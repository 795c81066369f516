//! How long any call may take: the bounds a user sets (or derives from the
//! lease), and how they reach the client and the server.
//!
//! Each statement is bounded three ways, so that neither side can wait
//! forever on the other:
//! - the pool hands out a connection (opening one included) within the
//!   connection bound;
//! - the server stops a statement at the statement bound
//!   (`statement_timeout`), and a row lock wait at the lock bound
//!   (`lock_timeout`): either is an `ERROR`, so the statement rolled back;
//! - the client waits for the reply a little longer than the server's
//!   bound, then drops the connection and answers [`Error::Timeout`]. A
//!   server that stopped answering (a partition that neither resets nor
//!   answers) is noticed there; a write sent on it is in doubt, and is
//!   resolved by reading the row on another connection, never guessed.
//!
//! TCP keepalive and `TCP_USER_TIMEOUT` are set to the statement bound, so
//! an idle pooled connection to a vanished host is closed by the kernel.
//!
//! [`Error::Timeout`]: crate::Error::Timeout

use crate::db::with_setting;
use crate::error::{Bound, Error};
use std::future::Future;
use std::time::Duration;

/// Time limits of the calls of one recorder. A field left `None` is
/// derived from the lease, as its doc says.
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq)]
pub struct Bounds {
    /// Longest one statement may run, on the server (`statement_timeout`)
    /// and, with a tenth more for the reply, on the client. Default: a
    /// third of the lease, and at least 1 s.
    pub statement: Option<Duration>,
    /// Longest a statement waits on a row another session holds
    /// (`lock_timeout`). Default: half the statement bound.
    pub lock: Option<Duration>,
    /// Longest wait for a connection of the pool, opening one included.
    /// Default: the statement bound.
    pub connection: Option<Duration>,
}

/// The bounds with every default filled in.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub(crate) statement: Duration,
    pub(crate) lock: Duration,
    pub(crate) connection: Duration,
}

/// A bound of at least 1 ms, since 0 turns PostgreSQL's timeouts off.
fn at_least_a_millisecond(d: Duration) -> Duration {
    d.max(Duration::from_millis(1))
}

impl Limits {
    /// `bounds` under leases of `lease`.
    pub(crate) fn of(bounds: Bounds, lease: Duration) -> Limits {
        let statement = bounds
            .statement
            .unwrap_or((lease / 3).max(Duration::from_secs(1)));
        let statement = at_least_a_millisecond(statement);
        Limits {
            statement,
            lock: at_least_a_millisecond(bounds.lock.unwrap_or(statement / 2)),
            connection: at_least_a_millisecond(bounds.connection.unwrap_or(statement)),
        }
    }

    /// How long the client waits for a statement's reply: the server's
    /// bound and a tenth more, so that a statement the server stopped is
    /// usually answered by the server's definite `ERROR` rather than by the
    /// client's in-doubt timeout.
    pub(crate) fn reply(&self) -> Duration {
        self.statement + self.statement / 10
    }

    /// `reply`, or [`Error::Timeout`] on the statement bound once the
    /// client's reply bound ([`reply`](Self::reply)) has passed without it.
    pub(crate) async fn reply_within<T>(
        &self,
        reply: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        within(self.reply(), Bound::Statement, reply).await
    }

    /// `connection`, or [`Error::Timeout`] on the connection bound.
    pub(crate) async fn connection_within<T>(
        &self,
        connection: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        within(self.connection, Bound::Connection, connection).await
    }

    /// Sets the server's timeouts and the socket's on `config`, after the
    /// options already set, so these win.
    pub(crate) fn apply(&self, config: &mut tokio_postgres::Config) {
        with_setting(
            config,
            &format!(
                "-c statement_timeout={} -c lock_timeout={}",
                millis(self.statement),
                millis(self.lock)
            ),
        );
        self.apply_to_socket(config);
    }

    /// Sets the socket's timeouts on `config`, and none of the server's:
    /// behind a pooler, which takes no start-up options, the server's
    /// bounds are the role's defaults, and the reply bound is kept here.
    pub(crate) fn apply_to_socket(&self, config: &mut tokio_postgres::Config) {
        let idle = config.get_keepalives_idle().min(self.statement);
        config
            .keepalives(true)
            .keepalives_idle(whole_seconds(idle))
            .keepalives_interval(whole_seconds(self.statement / 4))
            .keepalives_retries(3)
            .tcp_user_timeout(self.statement);
        if config
            .get_connect_timeout()
            .is_none_or(|t| *t > self.connection)
        {
            config.connect_timeout(self.connection);
        }
    }
}

/// A keepalive period for the socket: whole seconds, rounded up, at least
/// one. The kernel takes `TCP_KEEPIDLE` and `TCP_KEEPINTVL` in seconds and
/// refuses 0 with `EINVAL`, which the socket layer would send for a period
/// under a second (it truncates), so that every TCP connection of a
/// recorder whose statement bound is under 4 s failed to open.
fn whole_seconds(d: Duration) -> Duration {
    let rounded_up = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    Duration::from_secs(rounded_up.max(1))
}

/// `d` in whole milliseconds for a PostgreSQL setting, at least 1 and at
/// most the settings' largest value.
pub(crate) fn millis(d: Duration) -> u128 {
    d.as_millis().clamp(1, i32::MAX as u128)
}

/// `call`, or [`Error::Timeout`] on `bound` once `after` has passed
/// without it (`call` is then dropped).
async fn within<T>(
    after: Duration,
    bound: Bound,
    call: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    match tokio::time::timeout(after, call).await {
        Ok(done) => done,
        Err(_) => Err(Error::Timeout { bound, after }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_derive_from_the_lease_with_a_floor() {
        let long = Limits::of(Bounds::default(), Duration::from_secs(30));
        assert_eq!(long.statement, Duration::from_secs(10));
        assert_eq!(long.lock, Duration::from_secs(5));
        assert_eq!(long.connection, Duration::from_secs(10));
        let short = Limits::of(Bounds::default(), Duration::from_millis(300));
        assert_eq!(short.statement, Duration::from_secs(1));
        assert!(short.reply() > short.statement);
    }

    #[test]
    fn keepalive_periods_are_whole_seconds_the_kernel_accepts() {
        for statement in [1, 999, 1000, 1001, 3999, 10_000] {
            let limits = Limits::of(
                Bounds {
                    statement: Some(Duration::from_millis(statement)),
                    ..Bounds::default()
                },
                Duration::from_secs(30),
            );
            let mut config = tokio_postgres::Config::new();
            limits.apply(&mut config);
            let idle = config.get_keepalives_idle();
            let interval = config.get_keepalives_interval().expect("interval set");
            for period in [idle, interval] {
                assert!(period >= Duration::from_secs(1), "{period:?} under 1 s");
                assert_eq!(period.subsec_nanos(), 0, "{period:?} not whole seconds");
            }
            assert!(idle >= limits.statement.min(Duration::from_secs(7200)));
        }
        assert_eq!(
            whole_seconds(Duration::from_millis(2500)),
            Duration::from_secs(3)
        );
        assert_eq!(
            whole_seconds(Duration::from_secs(10)),
            Duration::from_secs(10)
        );
    }

    #[test]
    fn a_zero_bound_is_a_millisecond_not_off() {
        let zero = Some(Duration::ZERO);
        let limits = Limits::of(
            Bounds {
                statement: zero,
                lock: zero,
                connection: zero,
            },
            Duration::from_secs(30),
        );
        assert_eq!(limits.statement, Duration::from_millis(1));
        assert_eq!(limits.lock, Duration::from_millis(1));
        assert_eq!(millis(Duration::ZERO), 1);
    }
}
