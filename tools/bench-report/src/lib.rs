//! The names the benches write and the report reads: contestants, criterion
//! group ids, the run mode and the memory file.
//!
//! Both sides use these types, so a renamed contestant or group is a compile
//! error or a report error naming it, never a silently empty table. This part
//! of the crate depends on serde and serde_json alone, so the benches that
//! use it do not build the report's command line or plotting.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};

/// A recorder measured by the benches, in the order of the report's tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "&'static str", try_from = "String")]
pub enum Contestant {
    /// This crate.
    Ours,
    /// The floor: a raw `scc::HashMap<u64, u8>` of state codes.
    RawScc,
    /// The published `async_tasks_recorder` 2.0.2.
    V2,
    /// `async_tasks_state_map` 1.0.1.
    StateMap,
    /// A hand-written `Mutex<HashMap>` recorder.
    MutexMap,
}

impl Contestant {
    /// Every contestant, in table order.
    pub const ALL: [Contestant; 5] = [
        Contestant::Ours,
        Contestant::RawScc,
        Contestant::V2,
        Contestant::StateMap,
        Contestant::MutexMap,
    ];

    /// The name in criterion's bench ids and in the memory file.
    pub const fn as_str(self) -> &'static str {
        match self {
            Contestant::Ours => "ours",
            Contestant::RawScc => "raw_scc",
            Contestant::V2 => "v2.0.2",
            Contestant::StateMap => "state_map",
            Contestant::MutexMap => "mutex_map",
        }
    }

    /// The column header in the report.
    pub const fn label(self) -> &'static str {
        match self {
            Contestant::Ours => "ours",
            Contestant::RawScc => "raw scc map",
            Contestant::V2 => "2.0.2",
            Contestant::StateMap => "state_map 1.0.1",
            Contestant::MutexMap => "Mutex<HashMap>",
        }
    }

    /// Whether the recorder has a `wait` call, so appears in
    /// [`Workload::WaitFinished`].
    pub const fn has_wait(self) -> bool {
        !matches!(self, Contestant::V2 | Contestant::StateMap)
    }

    /// The contestant named `name` in a bench id.
    pub fn parse(name: &str) -> Option<Contestant> {
        Contestant::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

impl fmt::Display for Contestant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<Contestant> for &'static str {
    fn from(c: Contestant) -> &'static str {
        c.as_str()
    }
}

impl TryFrom<String> for Contestant {
    type Error = String;
    fn try_from(name: String) -> Result<Contestant, String> {
        Contestant::parse(&name).ok_or_else(|| format!("unknown contestant `{name}`"))
    }
}

/// Adds `names()`: every `as_str` of a name enum, for error messages.
macro_rules! names {
    ($t:ty) => {
        impl $t {
            /// The valid names, for error messages.
            pub fn names() -> String {
                <$t>::ALL
                    .iter()
                    .map(|v| v.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        }
    };
}
names!(Contestant);

/// A single-thread workload of `benches/single.rs`: group `single/<name>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Workload {
    LaunchBlockFresh,
    LaunchSpawned,
    QueryHit,
    QueryMiss,
    Revoke,
    WaitFinished,
}

impl Workload {
    /// Every workload, in table order.
    pub const ALL: [Workload; 6] = [
        Workload::LaunchBlockFresh,
        Workload::LaunchSpawned,
        Workload::QueryHit,
        Workload::QueryMiss,
        Workload::Revoke,
        Workload::WaitFinished,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Workload::LaunchBlockFresh => "launch_block_fresh",
            Workload::LaunchSpawned => "launch_spawned",
            Workload::QueryHit => "query_hit",
            Workload::QueryMiss => "query_miss",
            Workload::Revoke => "revoke",
            Workload::WaitFinished => "wait_finished",
        }
    }
}
names!(Workload);

/// A workload of `benches/scale.rs`, measured at each table size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ScaleWorkload {
    QueryHit,
    LaunchBlockFresh,
}

impl ScaleWorkload {
    pub const ALL: [ScaleWorkload; 2] = [ScaleWorkload::QueryHit, ScaleWorkload::LaunchBlockFresh];

    pub const fn as_str(self) -> &'static str {
        match self {
            ScaleWorkload::QueryHit => "query_hit",
            ScaleWorkload::LaunchBlockFresh => "launch_block_fresh",
        }
    }
}
names!(ScaleWorkload);

/// A key distribution of `benches/contention.rs`. The benches draw the keys;
/// this names them and fixes their parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Keys {
    /// Uniform over 10^3 ids.
    Uniform1e3,
    /// Uniform over 10^6 ids.
    Uniform1e6,
    /// Zipf with exponent 1.1 over 10^6 ids.
    Zipf1_1,
    /// Every operation on id 0.
    HotId,
}

impl Keys {
    pub const ALL: [Keys; 4] = [
        Keys::Uniform1e3,
        Keys::Uniform1e6,
        Keys::Zipf1_1,
        Keys::HotId,
    ];

    /// The name in group ids and plot file names.
    pub const fn as_str(self) -> &'static str {
        match self {
            Keys::Uniform1e3 => "uniform_1e3",
            Keys::Uniform1e6 => "uniform_1e6",
            Keys::Zipf1_1 => "zipf1.1_1e6",
            Keys::HotId => "hot_id",
        }
    }
}
names!(Keys);

/// A read/write mix of the contention workloads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mix {
    /// 90% queries, 10% writes.
    Q90W10,
    /// Half queries, half writes.
    Q50W50,
}

impl Mix {
    pub const ALL: [Mix; 2] = [Mix::Q90W10, Mix::Q50W50];

    pub const fn as_str(self) -> &'static str {
        match self {
            Mix::Q90W10 => "q90_w10",
            Mix::Q50W50 => "q50_w50",
        }
    }

    /// Percent of operations that are writes.
    pub const fn write_percent(self) -> u32 {
        match self {
            Mix::Q90W10 => 10,
            Mix::Q50W50 => 50,
        }
    }
}
names!(Mix);

/// Thread counts of every contention group, its parameter.
pub const CONTENTION_THREADS: [u64; 5] = [1, 2, 4, 8, 16];

/// A criterion group of the benches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Group {
    /// `single/<workload>`.
    Single(Workload),
    /// `listing/failed_<failed>_of_<ids>`: list the `failed` failed ids
    /// among `ids` recorded ones.
    Listing { failed: u64, ids: u64 },
    /// `contention/<keys>/<mix>`, parameter: threads.
    Contention(Keys, Mix),
    /// `scale/<workload>`, parameter: table ids.
    Scale(ScaleWorkload),
}

impl Group {
    /// The criterion group id.
    pub fn id(&self) -> String {
        match self {
            Group::Single(w) => format!("single/{}", w.as_str()),
            Group::Listing { failed, ids } => {
                format!("listing/failed_{failed}_of_{}", exponent_name(*ids))
            }
            Group::Contention(keys, mix) => {
                format!("contention/{}/{}", keys.as_str(), mix.as_str())
            }
            Group::Scale(w) => format!("scale/{}", w.as_str()),
        }
    }

    /// The group with criterion id `id`, or why it is not one.
    pub fn parse(id: &str) -> Result<Group, String> {
        let unknown = |what: &str, name: &str, names: String| {
            format!("group `{id}`: unknown {what} `{name}`; expected one of {names}")
        };
        let (family, rest) = id
            .split_once('/')
            .ok_or_else(|| format!("group `{id}` has no family/ prefix"))?;
        match family {
            "single" => Workload::ALL
                .into_iter()
                .find(|w| w.as_str() == rest)
                .map(Group::Single)
                .ok_or_else(|| unknown("workload", rest, Workload::names())),
            "scale" => ScaleWorkload::ALL
                .into_iter()
                .find(|w| w.as_str() == rest)
                .map(Group::Scale)
                .ok_or_else(|| unknown("scale workload", rest, ScaleWorkload::names())),
            "contention" => {
                let (keys, mix) = rest
                    .split_once('/')
                    .ok_or_else(|| format!("group `{id}`: expected contention/<keys>/<mix>"))?;
                let keys = Keys::ALL
                    .into_iter()
                    .find(|k| k.as_str() == keys)
                    .ok_or_else(|| unknown("key distribution", keys, Keys::names()))?;
                let mix = Mix::ALL
                    .into_iter()
                    .find(|m| m.as_str() == mix)
                    .ok_or_else(|| unknown("mix", mix, Mix::names()))?;
                Ok(Group::Contention(keys, mix))
            }
            "listing" => {
                let parsed = rest
                    .strip_prefix("failed_")
                    .and_then(|r| r.split_once("_of_"))
                    .and_then(|(failed, ids)| Some((failed.parse().ok()?, parse_exponent(ids)?)));
                match parsed {
                    Some((failed, ids)) => Ok(Group::Listing { failed, ids }),
                    None => Err(format!(
                        "group `{id}`: expected listing/failed_<n>_of_1e<k>"
                    )),
                }
            }
            _ => Err(format!(
                "group `{id}`: unknown family `{family}`; expected single, listing, contention or scale"
            )),
        }
    }

    /// The contestants every run of this group measures.
    pub fn contestants(&self) -> Vec<Contestant> {
        Contestant::ALL
            .into_iter()
            .filter(|c| *self != Group::Single(Workload::WaitFinished) || c.has_wait())
            .collect()
    }
}

impl fmt::Display for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id())
    }
}

/// `1e6` for 1_000_000: short names for powers of ten, the number otherwise.
pub fn exponent_name(n: u64) -> String {
    let mut exp = 0;
    let mut rest = n;
    while rest >= 10 && rest.is_multiple_of(10) {
        rest /= 10;
        exp += 1;
    }
    if rest == 1 {
        format!("1e{exp}")
    } else {
        n.to_string()
    }
}

/// The inverse of [`exponent_name`].
pub fn parse_exponent(name: &str) -> Option<u64> {
    match name.strip_prefix("1e") {
        Some(exp) => 10u64.checked_pow(exp.parse().ok()?),
        None => name.parse().ok(),
    }
}

/// How the benches ran: the smoke configuration or the full one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `BENCH_QUICK=1`: tiny samples and smaller tables, for smoke tests.
    Quick,
    /// A plain `cargo bench`.
    Full,
}

impl Mode {
    /// `BENCH_QUICK=1` (any value but empty or `0`) selects [`Mode::Quick`].
    pub fn from_env() -> Mode {
        if std::env::var("BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0") {
            Mode::Quick
        } else {
            Mode::Full
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Mode::Quick => "quick",
            Mode::Full => "full",
        }
    }

    pub fn parse(name: &str) -> Option<Mode> {
        [Mode::Quick, Mode::Full]
            .into_iter()
            .find(|m| m.as_str() == name.trim())
    }

    /// Table sizes of the scale benches.
    pub fn scale_sizes(self) -> &'static [u64] {
        match self {
            Mode::Quick => &[1_000, 100_000],
            Mode::Full => &[1_000, 100_000, 1_000_000, 10_000_000],
        }
    }

    /// Ids recorded in the listing bench's table: 10^6, or 10^5 when quick.
    pub const fn listing_ids(self) -> u64 {
        match self {
            Mode::Quick => 100_000,
            Mode::Full => 1_000_000,
        }
    }

    /// The listing group of a run in this mode.
    pub const fn listing(self) -> Group {
        Group::Listing {
            failed: LISTED_FAILED,
            ids: self.listing_ids(),
        }
    }
}

/// Failed ids among the listing bench's table.
pub const LISTED_FAILED: u64 = 1_000;

/// File in criterion's directory holding [`Mode::as_str`] of the last run.
pub const MODE_FILE: &str = "bench_mode.txt";

/// File in criterion's directory holding the scale benches' `Vec<MemoryRow>`.
pub const MEMORY_FILE: &str = "scale_memory.json";

/// Heap growth per recorded id of one contestant at one table size.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryRow {
    pub contestant: Contestant,
    /// Ids recorded in the table.
    pub ids: u64,
    /// Live heap growth while filling the table, divided by `ids`.
    pub bytes_per_id: f64,
}

/// Reads the memory file, or says what is wrong with it.
pub fn read_memory(path: &Path) -> Result<Vec<MemoryRow>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Criterion's output directory: `$CARGO_TARGET_DIR/criterion`, else
/// `target/criterion` relative to the working directory.
pub fn criterion_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"))
        .join("criterion")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_group_id_parses_back() {
        let mut groups: Vec<Group> = Workload::ALL.into_iter().map(Group::Single).collect();
        groups.extend(ScaleWorkload::ALL.into_iter().map(Group::Scale));
        for keys in Keys::ALL {
            groups.extend(Mix::ALL.into_iter().map(|m| Group::Contention(keys, m)));
        }
        groups.push(Mode::Quick.listing());
        groups.push(Mode::Full.listing());
        for g in groups {
            assert_eq!(Group::parse(&g.id()), Ok(g), "{g}");
        }
        assert_eq!(Mode::Full.listing().id(), "listing/failed_1000_of_1e6");
    }

    #[test]
    fn unknown_names_are_errors_naming_them() {
        let e = Group::parse("contention/uniform_1e9/q90_w10").unwrap_err();
        assert!(e.contains("unknown key distribution `uniform_1e9`"), "{e}");
        let e = Group::parse("single/launch_fast").unwrap_err();
        assert!(e.contains("unknown workload `launch_fast`"), "{e}");
        let e = serde_json::from_str::<Vec<MemoryRow>>(
            r#"[{"contestant":"v3","ids":10,"bytes_per_id":1.0}]"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("unknown contestant `v3`"), "{e}");
    }

    #[test]
    fn memory_rows_round_trip_by_contestant_name() {
        let rows = vec![MemoryRow {
            contestant: Contestant::V2,
            ids: 1_000,
            bytes_per_id: 34.5,
        }];
        let json = serde_json::to_string(&rows).unwrap();
        assert_eq!(
            json,
            r#"[{"contestant":"v2.0.2","ids":1000,"bytes_per_id":34.5}]"#
        );
        assert_eq!(serde_json::from_str::<Vec<MemoryRow>>(&json).unwrap(), rows);
    }

    #[test]
    fn exponent_names_round_trip() {
        for n in [1, 10, 1_000, 100_000, 10_000_000, 1_234] {
            assert_eq!(parse_exponent(&exponent_name(n)), Some(n));
        }
    }
}
