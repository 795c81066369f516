//! The crate's error: connection loss, a refused statement, a bound passed,
//! bad input; and whether a write it reports may have applied.

use std::time::Duration;

/// Which of the [`Bounds`](crate::Bounds) a call passed.
#[derive(Clone, Copy, Debug, Eq, PartialEq, Hash)]
pub enum Bound {
    /// Waiting for a connection of the pool.
    Connection,
    /// Waiting for a statement's reply.
    Statement,
}

/// Errors are values: connection loss, a refused statement, bad input.
#[derive(Debug)]
pub enum Error {
    /// The pool could not hand out a connection.
    Pool(String),
    /// A statement failed. The server rolled it back (an autocommit
    /// statement either commits whole or not at all), unless it was a
    /// finish, whose in-doubt outcome is resolved by re-reading the row.
    Db(tokio_postgres::Error),
    /// The table name is not a plain lower-case identifier.
    BadTableName(String),
    /// A lease or interval out of range.
    BadDuration(Duration),
    /// A write was sent and no answer proves what it did: its connection
    /// broke or its reply did not come within the bound, and the row could
    /// not settle it (a claim's row never can: its fence was in the lost
    /// reply; a finish's row cannot once the id has moved to a later
    /// epoch). It may or may not have applied. A claim that did holds the
    /// id under a lease nobody renews, and the sweep expires it after one
    /// lease.
    InDoubt {
        /// The write: `claim`, `revoke begin`, `finish`, `revoke end`.
        write: &'static str,
        /// What cut it short, if the call saw it (not when only the row's
        /// later epoch hides the answer).
        cause: Option<Box<Error>>,
    },
    /// A call waited past one of its [`Bounds`](crate::Bounds) for the
    /// database and gave up; nothing it sent is in doubt (that would be
    /// [`Error::InDoubt`]).
    Timeout {
        /// The bound that was passed.
        bound: Bound,
        /// Its length.
        after: Duration,
    },
    /// The id changed state on every one of many retries of a claim or
    /// revoke; nothing was changed by this call.
    Contended,
    /// A call that spawns a task (a sweeper) was made outside a tokio
    /// runtime.
    NoRuntime,
    /// The database holds an object of the table's names that this crate
    /// did not make, or made otherwise than its proofs assume (a fence
    /// sequence that caches values, say): what and why.
    Schema(String),
    /// Behind a pooler ([`Config::pooler`](crate::Config::pooler)), the
    /// sessions the server starts do not default to the settings the proofs
    /// assume (READ COMMITTED, `synchronous_commit = on`), and a pooler
    /// takes no start-up options to set them: which, and the `ALTER ROLE`
    /// that sets each. Nothing was sent.
    Settings(String),
    /// The simulated database's answer (`test-hooks` only): SQLSTATE
    /// `code`, with the session ended (`fatal`: a reset connection) or the
    /// statement refused and rolled back.
    #[cfg(feature = "test-hooks")]
    #[doc(hidden)]
    Simulated {
        /// The SQLSTATE.
        code: &'static str,
        /// The session ended under the statement.
        fatal: bool,
    },
    /// A returned row has a column this crate cannot read: the table of
    /// that name was made by something else (other column types).
    Column {
        /// The column's name in the statement's result.
        column: &'static str,
        /// Why its value could not be read.
        error: tokio_postgres::Error,
    },
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Pool(e) => write!(f, "no database connection: {e}"),
            Error::Db(e) => match e.as_db_error() {
                // The server's own words: its SQLSTATE, message and detail.
                Some(db) => {
                    let (code, message) = (db.code().code(), db.message());
                    write!(f, "database error {code}: {message}")?;
                    if let Some(detail) = db.detail() {
                        write!(f, " ({detail})")?;
                    }
                    Ok(())
                }
                // The client's: tokio-postgres says what failed, its source why.
                None => {
                    write!(f, "database error: {e}")?;
                    match std::error::Error::source(e) {
                        Some(cause) => write!(f, ": {cause}"),
                        None => Ok(()),
                    }
                }
            },
            Error::BadTableName(name) => write!(
                f,
                "table name {name:?} is not a lower-case identifier of at most 50 characters"
            ),
            Error::BadDuration(d) => write!(f, "duration {d:?} out of range"),
            Error::InDoubt { write, cause } => {
                write!(f, "the {write} is in doubt: it may or may not have applied")?;
                match cause {
                    Some(cause) => write!(f, " ({cause})"),
                    None => write!(
                        f,
                        " (the id moved to a later epoch before its row was read)"
                    ),
                }
            }
            Error::Timeout { bound, after } => {
                let what = match bound {
                    Bound::Connection => "a pooled connection",
                    Bound::Statement => "the statement's reply",
                };
                write!(f, "timed out after {after:?} waiting for {what}")
            }
            Error::Contended => write!(f, "the id changed state on every retry"),
            Error::NoRuntime => write!(f, "no tokio runtime to run the task on"),
            Error::Schema(why) => write!(f, "schema refused: {why}"),
            Error::Settings(why) => write!(f, "server defaults refused: {why}"),
            #[cfg(feature = "test-hooks")]
            Error::Simulated { code, fatal } => match fatal {
                true => write!(f, "simulated connection lost ({code})"),
                false => write!(f, "simulated database error {code}"),
            },
            Error::Column { column, error } => write!(
                f,
                "column {column} of the table holds what this crate does not store: {error}"
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Db(e) | Error::Column { error: e, .. } => Some(e),
            Error::InDoubt {
                cause: Some(cause), ..
            } => Some(cause.as_ref()),
            _ => None,
        }
    }
}

impl From<tokio_postgres::Error> for Error {
    fn from(e: tokio_postgres::Error) -> Self {
        Error::Db(e)
    }
}

impl From<deadpool_postgres::PoolError> for Error {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        match e {
            deadpool_postgres::PoolError::Backend(e) => Error::Db(e),
            e => Error::Pool(e.to_string()),
        }
    }
}

impl Error {
    /// Whether this error leaves a write in doubt ([`Error::InDoubt`]).
    /// Every other error is definite: the call's write did not apply (the
    /// server refused it and rolled it back, or it was never sent), or the
    /// call writes nothing a caller must reconcile (a read, a listing, the
    /// idempotent sweep).
    pub fn is_in_doubt(&self) -> bool {
        matches!(self, Error::InDoubt { .. })
    }

    /// `self`, met by `write`: in doubt, unless it came before the write
    /// could be sent (no connection) or the server's own `ERROR` proves it
    /// rolled back.
    pub(crate) fn after_sending(self, write: &'static str) -> Error {
        let unsent = matches!(
            self,
            Error::Pool(_)
                | Error::Settings(_)
                | Error::Timeout {
                    bound: Bound::Connection,
                    ..
                }
        );
        if unsent || self.rolled_back() || self.is_in_doubt() {
            self
        } else {
            Error::InDoubt {
                write,
                cause: Some(Box::new(self)),
            }
        }
    }

    /// The connection broke under the statement (an I/O error, or a
    /// `FATAL` that ended the session): whether the statement committed is
    /// unknown, and another connection may succeed.
    pub(crate) fn broke_connection(&self) -> bool {
        match self {
            Error::Db(e) => e.as_db_error().is_none_or(|db| db.severity() == "FATAL"),
            #[cfg(feature = "test-hooks")]
            Error::Simulated { fatal, .. } => *fatal,
            _ => false,
        }
    }

    /// The server refused the statement with an `ERROR`: an autocommit
    /// statement rolled back, and sending it again would be refused again.
    pub(crate) fn rolled_back(&self) -> bool {
        match self {
            Error::Db(e) => e.as_db_error().is_some_and(|db| db.severity() == "ERROR"),
            #[cfg(feature = "test-hooks")]
            Error::Simulated { fatal, .. } => !*fatal,
            _ => false,
        }
    }

    /// The server stopped the statement's wait on a row lock at the lock
    /// bound (`lock_timeout`, SQLSTATE 55P03): it rolled back.
    pub(crate) fn waited_past_the_lock_bound(&self) -> bool {
        match self {
            Error::Db(e) => e
                .as_db_error()
                .is_some_and(|db| db.code().code() == "55P03"),
            #[cfg(feature = "test-hooks")]
            Error::Simulated { code, .. } => *code == "55P03",
            _ => false,
        }
    }
}
