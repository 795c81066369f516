//! Listings in pages, one trait for every backend: a listing of 10^6 ids
//! need not be one result and one allocation.
//!
//! # What a paged listing promises
//! Pages are keyset pages in ascending id order: each page holds up to
//! `limit` ids, each greater than the `after` it was asked with, and
//! [`Page::next`] is the `after` of the next page. So, for a walk from
//! `after = None` until `next` is `None`:
//! - no id is returned twice;
//! - every id that is in the state for the whole walk (from the first
//!   page's call to the last one's) is returned, exactly once;
//! - every id returned was in the state at some moment during the call of
//!   its page.
//!
//! An id that enters or leaves the state during the walk may or may not be
//! returned (once at most). The order is the backend's: `Ord` in memory, the
//! id column's collation in PostgreSQL.

use crate::spec::TaskState;
use std::future::Future;

/// One page of a listing.
#[derive(Clone, Debug, Default, Eq, PartialEq, Hash)]
pub struct Page<K> {
    /// Up to `limit` ids in the state, in ascending order.
    pub ids: Vec<K>,
    /// The `after` of the next page: the last id here if the page is full
    /// (more may follow), `None` if the listing is complete.
    pub next: Option<K>,
}

impl<K: Clone> Page<K> {
    /// The page of `ids` (ascending, distinct) asked for with `limit`.
    pub fn of(ids: Vec<K>, limit: usize) -> Page<K> {
        let next = if ids.len() >= limit.max(1) {
            ids.last().cloned()
        } else {
            None
        };
        Page { ids, next }
    }
}

/// Paged listings and counts by state, as each backend answers them: the
/// in-memory recorder never fails (`Error = Infallible`), a database may.
pub trait PagedListing<K> {
    /// Why a call failed.
    type Error;

    /// Up to `limit` ids in `state` (a `limit` of 0 is taken as 1), in
    /// ascending order, each greater than `after` if given; none for
    /// `NotFound`. See the module docs for what a walk of pages promises.
    fn list_page(
        &self,
        state: TaskState,
        after: Option<&K>,
        limit: usize,
    ) -> impl Future<Output = Result<Page<K>, Self::Error>> + Send;

    /// How many ids are in `state` (0 for `NotFound`).
    fn count(&self, state: TaskState) -> impl Future<Output = Result<u64, Self::Error>> + Send;
}
