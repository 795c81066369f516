//! The service's logging: one `payment` span per request on an id, with
//! the id, epoch, fence and outcome whichever backend answered, and the
//! recorders' own spans nested inside it. Written by `tracing-subscriber`
//! to stderr; `RUST_LOG` chooses what (default `info`).

use crate::backend::Payment;
use crate::input::state_name;
use tracing::Span;
use tracing::field::Empty;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

/// Installs the subscriber: a line per event and per closed span.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_span_events(FmtSpan::CLOSE)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
}

/// The span of operation `op` (`start`, `read`, `revoke`) on `id`.
pub fn span(op: &'static str, id: &str) -> Span {
    tracing::info_span!(
        "payment",
        op,
        id,
        epoch = Empty,
        fence = Empty,
        state = Empty,
        outcome = Empty
    )
}

/// The span of an attempt that runs in the background after its start
/// has answered: a root of its own, with the attempt's epoch and fence.
pub fn attempt(id: &str, epoch: u64, fence: u64) -> Span {
    tracing::info_span!(parent: None, "payment", op = "pay", id, epoch, fence, outcome = Empty)
}

/// Records on `span` what the backend answered about `payment`.
pub fn answered(span: &Span, payment: &Payment, outcome: &str) {
    if span.is_disabled() {
        return;
    }
    span.record("epoch", payment.epoch);
    if let Some(fence) = payment.fence {
        span.record("fence", fence);
    }
    span.record("state", state_name(payment.state));
    span.record("outcome", outcome);
}
