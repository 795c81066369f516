//! The paged listing's check, written once for every backend: a walk of
//! keyset pages while ids enter and leave the listed state between pages.
//!
//! Moves happen only between pages, so each page has one right answer: the
//! `limit` smallest ids after its `after` among those in the state at that
//! moment. The check compares every page with that model, and then the
//! walk with what a paged listing promises (`async_tasks_recorder::PagedListing`):
//! no id twice, every id in the state for the whole walk exactly once.

use crate::protocol::{Id, Protocol};
use async_tasks_recorder::{Page, PagedListing, TaskState};
use std::collections::BTreeSet;
use std::fmt::Debug;

/// Ids the walk starts with: `Failed` at multiples of 10, `Success` at
/// multiples of 10 plus 5.
const FIRST: Id = 10;
const LAST: Id = 200;

/// Page length of the walk.
const LIMIT: usize = 3;

/// More pages than any walk here needs (its ids are fewer than 100): a
/// walk that does not end by then fails instead of hanging.
const PAGES_AT_MOST: usize = 100;

/// One page of `state`, or why it could not be had.
async fn page<P>(recorder: &P, state: TaskState, after: Option<Id>) -> Result<Page<Id>, String>
where
    P: PagedListing<Id>,
    P::Error: Debug,
{
    recorder
        .list_page(state, after.as_ref(), LIMIT)
        .await
        .map_err(|e| format!("list_page({state:?}, {after:?}): {e:?}"))
}

/// The count of `state`, or why it could not be had.
async fn count<P>(recorder: &P, state: TaskState) -> Result<u64, String>
where
    P: PagedListing<Id>,
    P::Error: Debug,
{
    recorder
        .count(state)
        .await
        .map_err(|e| format!("count({state:?}): {e:?}"))
}

/// Makes the fresh id `id` `Failed`.
async fn fail<P: Protocol>(recorder: &P, id: Id) -> Result<(), String> {
    match recorder.launch_block(id, async { Err(()) }).await {
        Ok(Err(())) => Ok(()),
        other => Err(format!("launch of {id} to fail it answered {other:?}")),
    }
}

/// Takes the `Failed` id `id` out of `Failed`: relaunched, it succeeds.
async fn succeed<P: Protocol>(recorder: &P, id: Id) -> Result<(), String> {
    match recorder.launch_block(id, async { Ok(()) }).await {
        Ok(Ok(())) => Ok(()),
        other => Err(format!("launch of {id} to succeed answered {other:?}")),
    }
}

/// What the walk saw against its model: the page must be the `LIMIT`
/// smallest ids of `model` after `after`, in order, with `next` set exactly
/// when the page is full.
fn expect_page(page: &Page<Id>, model: &BTreeSet<Id>, after: Option<Id>) -> Result<(), String> {
    let expected: Vec<Id> = model
        .iter()
        .copied()
        .filter(|&id| after.is_none_or(|after| id > after))
        .take(LIMIT)
        .collect();
    let next = (expected.len() == LIMIT).then(|| expected[LIMIT - 1]);
    if page.ids != expected || page.next != next {
        return Err(format!(
            "after {after:?}: the page was {:?} (next {:?}), the ids then in the state \
             give {expected:?} (next {next:?})",
            page.ids, page.next
        ));
    }
    Ok(())
}

/// Walks the `Failed` ids in pages of 3 from a fresh `recorder` while,
/// between pages, an id fails behind the cursor (it must not come back), an
/// id fails ahead of it (it must come in its page) and an id ahead leaves
/// `Failed` (it must not come); every page is checked against the model and
/// every count with it. Then the walk's promises, and the `Success`
/// listing of an id being revoked, which still reads `Success`.
pub async fn check<P>(recorder: &P) -> Result<(), String>
where
    P: Protocol + PagedListing<Id>,
    P::Error: Debug,
{
    let mut failed = BTreeSet::new();
    let mut succeeded = BTreeSet::new();
    // Every id launched so far: the ids moved in are fresh ones.
    let mut used = BTreeSet::new();
    for id in (FIRST..=LAST).step_by(10) {
        used.extend([id, id + 5]);
        fail(recorder, id).await?;
        failed.insert(id);
        let other = id + 5;
        match recorder.launch_block(other, async { Ok(()) }).await {
            Ok(Ok(())) => succeeded.insert(other),
            answer => return Err(format!("launch of {other} answered {answer:?}")),
        };
    }
    let throughout: BTreeSet<Id> = failed.clone();
    let mut left = BTreeSet::new();
    let mut returned = Vec::new();
    let mut after = None;
    let mut ended = false;
    for turn in 0..PAGES_AT_MOST {
        let got = page(recorder, TaskState::Failed, after).await?;
        expect_page(&got, &failed, after)?;
        returned.extend(got.ids.iter().copied());
        let Some(cursor) = got.next else {
            ended = true;
            break;
        };
        after = Some(cursor);
        match turn % 3 {
            // Behind the cursor: not listed again by this walk.
            0 => {
                let behind = (0..cursor).rev().find(|id| !used.contains(id));
                let behind = behind.ok_or("no fresh id behind the cursor")?;
                used.insert(behind);
                fail(recorder, behind).await?;
                failed.insert(behind);
            }
            // Ahead: listed in its page.
            1 => {
                let ahead = (cursor + 1..).find(|id| !used.contains(id));
                let ahead = ahead.ok_or("no fresh id ahead of the cursor")?;
                used.insert(ahead);
                fail(recorder, ahead).await?;
                failed.insert(ahead);
            }
            // Ahead, leaving: not listed.
            _ => {
                if let Some(&leaving) = failed.range(cursor + 1..).next() {
                    succeed(recorder, leaving).await?;
                    failed.remove(&leaving);
                    succeeded.insert(leaving);
                    left.insert(leaving);
                }
            }
        }
        for (state, model) in [
            (TaskState::Failed, &failed),
            (TaskState::Success, &succeeded),
        ] {
            let counted = count(recorder, state).await?;
            if counted != model.len() as u64 {
                return Err(format!(
                    "count({state:?}) is {counted}, {} in it",
                    model.len()
                ));
            }
        }
    }
    if !ended {
        return Err(format!(
            "the walk did not end in {PAGES_AT_MOST} pages: {returned:?}"
        ));
    }
    let mut seen = BTreeSet::new();
    for id in &returned {
        if !seen.insert(*id) {
            return Err(format!("{id} was returned twice: {returned:?}"));
        }
    }
    if !returned.is_sorted() {
        return Err(format!("the walk was not in id order: {returned:?}"));
    }
    for id in throughout.difference(&left) {
        if !seen.contains(id) {
            return Err(format!("{id} was Failed throughout and not returned"));
        }
    }
    check_edges(recorder, &succeeded).await
}

/// `NotFound` lists nothing and counts 0; a limit of 0 is a page of one;
/// the `Success` walk lists an id while its revoke runs.
async fn check_edges<P>(recorder: &P, succeeded: &BTreeSet<Id>) -> Result<(), String>
where
    P: Protocol + PagedListing<Id>,
    P::Error: Debug,
{
    let none = page(recorder, TaskState::NotFound, None).await?;
    if none != Page::default() || count(recorder, TaskState::NotFound).await? != 0 {
        return Err(format!("NotFound listed {none:?}"));
    }
    let one = recorder
        .list_page(TaskState::Success, None, 0)
        .await
        .map_err(|e| format!("list_page with limit 0: {e:?}"))?;
    let first = succeeded.iter().next().copied();
    if one.ids != Vec::from_iter(first) || one.next != first {
        return Err(format!("a limit of 0 gave {one:?}"));
    }
    let revoked = *succeeded
        .iter()
        .next_back()
        .ok_or("no Success id to revoke")?;
    let lister = recorder.clone();
    let during = recorder
        .revoke_block(revoked, async move {
            let mut all = Vec::new();
            let mut after = None;
            for _ in 0..PAGES_AT_MOST {
                let Ok(got) = page(&lister, TaskState::Success, after).await else {
                    return Err(());
                };
                all.extend(got.ids);
                after = got.next;
                if after.is_none() {
                    break;
                }
            }
            // Fail the revoke (the id stays `Success`) unless it was listed.
            if all.contains(&revoked) {
                Ok(())
            } else {
                Err(())
            }
        })
        .await;
    match during {
        Ok(Ok(())) => Ok(()),
        other => Err(format!(
            "id {revoked}, being revoked, was not in the Success walk ({other:?})"
        )),
    }
}
