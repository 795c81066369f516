//! What a subject can disagree with the spec on, and how the model test
//! fails with it: a typed [`Mismatch`], kept for the runner, and a panic.

use std::cell::RefCell;
use std::fmt;

/// What disagreed with the spec.
#[derive(Clone, Copy, Debug, Eq, PartialEq, Hash)]
pub enum Kind {
    /// A launch or a revoke answered otherwise than `spec::step`.
    Response,
    /// A query read another state than the spec's.
    Query,
    /// A quick query read another state than the spec's.
    QuickQuery,
    /// A listing differs from the ids the spec has in that state.
    Listing,
    /// The counts differ from the spec's.
    Counts,
    /// A woken `wait` returned another state than the id's.
    WaitReturned,
    /// A `wait` is still pending though the id is not `Working`.
    WaitAsleep,
    /// After a step, an id's state is not the spec's.
    State,
    /// Something else failed: the subject panicked where it must not, or
    /// a released task never ended.
    Other,
}

/// A disagreement with the spec: its kind, and the message the model
/// test failed with.
#[derive(Clone, Debug)]
pub struct Mismatch {
    pub kind: Kind,
    pub detail: String,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.detail)
    }
}

thread_local! {
    /// The mismatch this thread's model test last failed with.
    pub(super) static LAST: RefCell<Option<Mismatch>> = const { RefCell::new(None) };
}

/// Fails the model test with a mismatch of `kind` unless `agrees`.
#[track_caller]
pub(super) fn expect(kind: Kind, agrees: bool, detail: impl FnOnce() -> String) {
    if !agrees {
        let detail = detail();
        LAST.set(Some(Mismatch {
            kind,
            detail: detail.clone(),
        }));
        panic!("{kind:?}: {detail}");
    }
}
