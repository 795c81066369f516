//! The performance targets of the crate, in one place, each with why.
//!
//! The two ratio targets compare with the raw scc map measured in the same
//! run, so they hold on any machine; the listing target is a time, because
//! its point is that listing must not walk the whole table.

use bench_report::{Contestant, Group, LISTED_FAILED, Mode, Workload};

/// `launch_block` of a fresh id ÷ the raw map's insert + update, at most.
pub const LAUNCH_BLOCK_VS_RAW: f64 = 1.3;

/// `query_task_state` ÷ one raw map read, at most.
pub const QUERY_VS_RAW: f64 = 1.2;

/// Listing 1,000 failed ids among [`LISTING_IDS`], in nanoseconds, at most.
pub const LISTING_NS: f64 = 50_000.0;

/// Recorded ids the listing target is stated for.
pub const LISTING_IDS: u64 = 1_000_000;

/// What a target bounds.
#[derive(Clone, Copy, Debug)]
pub enum Limit {
    /// ours ÷ the raw scc map, in one group of the same run.
    TimesRaw(f64),
    /// ours, in nanoseconds per operation.
    Nanos(f64),
}

/// One target, as the summary states it.
#[derive(Clone, Copy, Debug)]
pub struct Target {
    pub what: &'static str,
    pub group: Group,
    pub limit: Limit,
    pub why: &'static str,
}

/// The targets, each with whether a run in `mode` measures what it is
/// stated for (a quick run lists among fewer ids). The `why` of each is the
/// reason for its limit, printed beside it in the summary.
pub fn targets(mode: Mode) -> [(Target, bool); 3] {
    [
        (
            Target {
                what: "`launch_block` of a fresh id ÷ raw insert + update, 10^5 ids",
                group: Group::Single(Workload::LaunchBlockFresh),
                limit: Limit::TimesRaw(LAUNCH_BLOCK_VS_RAW),
                why: "a launch makes the raw map's two calls anyway; the spec step and drop guard around them may add 30%",
            },
            true,
        ),
        (
            Target {
                what: "`query_task_state` ÷ one raw read, 10^5 ids",
                group: Group::Single(Workload::QueryHit),
                limit: Limit::TimesRaw(QUERY_VS_RAW),
                why: "a query is one map read; turning the entry into a state may add 20%",
            },
            true,
        ),
        (
            Target {
                what: "list 1,000 failed ids among 10^6",
                group: Group::Listing {
                    failed: LISTED_FAILED,
                    ids: LISTING_IDS,
                },
                limit: Limit::Nanos(LISTING_NS),
                why: "50 ns per listed id: the cost must follow the failed ids, not the table, which one walk of 10^6 ids cannot do",
            },
            mode.listing_ids() == LISTING_IDS,
        ),
    ]
}

/// Ours against the target: (shown value, met), from `get(contestant)`.
pub fn check(target: &Target, get: impl Fn(Contestant) -> Option<f64>) -> Option<(f64, bool)> {
    let ours = get(Contestant::Ours)?;
    match target.limit {
        Limit::TimesRaw(limit) => {
            let raw = get(Contestant::RawScc).filter(|r| *r > 0.0)?;
            Some((ours / raw, ours / raw <= limit))
        }
        Limit::Nanos(limit) => Some((ours, ours <= limit)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ratio_over_its_limit_is_not_met() {
        let [(launch, _), _, _] = targets(Mode::Full);
        let at = |ours: f64| {
            move |c: Contestant| match c {
                Contestant::Ours => Some(ours),
                Contestant::RawScc => Some(100.0),
                _ => None,
            }
        };
        assert_eq!(check(&launch, at(130.0)), Some((1.3, true)));
        assert_eq!(check(&launch, at(131.0)).map(|(_, met)| met), Some(false));
        assert_eq!(check(&launch, |_| None), None);
    }

    #[test]
    fn the_listing_target_applies_to_full_runs_only() {
        let [_, _, (listing, applies)] = targets(Mode::Full);
        assert!(applies);
        assert_eq!(listing.group, Mode::Full.listing());
        let [_, _, (_, applies)] = targets(Mode::Quick);
        assert!(!applies);
        let ours = |ns: f64| move |_| Some(ns);
        assert_eq!(check(&listing, ours(50_000.0)), Some((50_000.0, true)));
        assert_eq!(
            check(&listing, ours(2_580_000.0)),
            Some((2_580_000.0, false))
        );
    }
}
