//! The spans of the recorder's calls: each call opens one ([`call!`] for
//! an id, [`listing!`] for a state) with `id`, `epoch`, `fence` and
//! `outcome`, and [`traced`] runs the call inside it and records the
//! answer: the granted lease, the row read, or the finish's outcome.
//! Without a subscriber the spans are disabled and nothing is formatted.

use crate::attempt::{Attempt, Finish, Lease};
use crate::db::{Key, Stored};
use crate::error::Error;
use crate::refusal::Refused;
use async_tasks_recorder::spec::TaskState;
use std::fmt::Debug;
use std::future::Future;
use tracing::{Instrument, Span};

/// The span of call `$name` on id `$id` at level `$level`, its answer's
/// fields left empty for [`traced`].
macro_rules! call {
    ($level:ident, $name:literal, $id:expr) => {
        tracing::span!(
            tracing::Level::$level,
            $name,
            id = ?$id,
            epoch = tracing::field::Empty,
            fence = tracing::field::Empty,
            outcome = tracing::field::Empty
        )
    };
}

/// The span of call `$name` over the ids in `$state`.
macro_rules! listing {
    ($name:literal, $state:expr) => {
        tracing::trace_span!($name, state = ?$state, outcome = tracing::field::Empty)
    };
}

pub(crate) use {call, listing};

/// An answer whose span fields are worth recording.
pub(crate) trait Traced {
    /// Records `epoch`, `fence` and `outcome` (those it knows) on `span`.
    fn record(&self, span: &Span);
}

/// Runs `call` inside `span`, then records its answer there, if a
/// subscriber enabled the span.
pub(crate) async fn traced<T: Traced>(span: Span, call: impl Future<Output = T>) -> T {
    let answer = call.instrument(span.clone()).await;
    if !span.is_disabled() {
        answer.record(&span);
    }
    answer
}

/// Records the lease's epoch and fence on `span`.
pub(crate) fn on_lease<K>(span: &Span, lease: &Lease<K>) {
    span.record("epoch", lease.epoch());
    span.record("fence", lease.fence());
}

fn error(span: &Span, e: &Error) {
    span.record(
        "outcome",
        tracing::field::display(format_args!("error: {e}")),
    );
}

impl<K: Key, Why: Debug> Traced for Result<Result<Attempt<K>, Why>, Error> {
    fn record(&self, span: &Span) {
        match self {
            Ok(Ok(attempt)) => {
                on_lease(span, attempt.lease());
                span.record("outcome", "granted");
            }
            Ok(Err(why)) => {
                span.record("outcome", tracing::field::debug(why));
            }
            Err(e) => error(span, e),
        }
    }
}

impl<K, Why: Debug> Traced for Result<Lease<K>, Refused<Why>> {
    fn record(&self, span: &Span) {
        match self {
            Ok(granted) => {
                on_lease(span, granted);
                span.record("outcome", "granted");
            }
            Err(Refused::By(why)) => {
                span.record("outcome", tracing::field::debug(why));
            }
            Err(Refused::Error(e)) => error(span, e),
        }
    }
}

impl<R, E, Why: Debug> Traced for Result<(Result<R, E>, Result<Finish, Error>), Refused<Why>> {
    fn record(&self, span: &Span) {
        match self {
            Ok((_, finish)) => finish.record(span),
            Err(Refused::By(why)) => {
                span.record("outcome", tracing::field::debug(why));
            }
            Err(Refused::Error(e)) => error(span, e),
        }
    }
}

impl Traced for Result<Finish, Error> {
    fn record(&self, span: &Span) {
        match self {
            Ok(finish) => {
                span.record("outcome", tracing::field::debug(finish));
            }
            Err(e) => error(span, e),
        }
    }
}

impl Traced for Result<Stored, Error> {
    fn record(&self, span: &Span) {
        match self {
            Ok(stored) => {
                span.record("epoch", stored.epoch);
                span.record("fence", stored.fence);
                span.record("outcome", tracing::field::debug(stored.phase));
            }
            Err(e) => error(span, e),
        }
    }
}

impl Traced for Result<TaskState, Error> {
    fn record(&self, span: &Span) {
        match self {
            Ok(state) => {
                span.record("outcome", tracing::field::debug(state));
            }
            Err(e) => error(span, e),
        }
    }
}

impl Traced for Result<u64, Error> {
    fn record(&self, span: &Span) {
        match self {
            Ok(count) => {
                span.record("outcome", count);
            }
            Err(e) => error(span, e),
        }
    }
}

impl<T> Traced for Result<Vec<T>, Error> {
    fn record(&self, span: &Span) {
        match self {
            Ok(rows) => {
                span.record("outcome", rows.len());
            }
            Err(e) => error(span, e),
        }
    }
}
