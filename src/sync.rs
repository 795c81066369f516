//! The sync-primitives shim: the only module that names locks, shared
//! pointers, hashers or the concurrent map.
//!
//! Without `--cfg loom` (set through `RUSTFLAGS`, as tokio and sharded-slab
//! do, never a cargo feature) it re-exports `std` and `scc`. With it, the same
//! names resolve to loom's instrumented `Arc` and `Mutex`, and to `scc` built
//! with its own `loom` feature, so `loom::model` explores the recorder's real
//! code, including every atomic access of the map itself.
//!
//! # Why scc itself under loom, and not a stand-in
//! The recorder's correctness rests on one property of the map: each
//! `entry`, `read`, `update` and `remove_if` call on a key runs its closure
//! while holding that key's bucket lock, so calls on one key are totally
//! ordered, and `iter` visits buckets one at a time under their locks. A
//! stand-in (say a `Mutex<HashMap>`) would satisfy a *stronger* contract,
//! whole-map atomicity, and would hide any dependence of ours on it: a
//! listing would become a snapshot. Running scc's loom build keeps the weaker,
//! real contract in the model. The cost is larger state spaces, which the
//! models keep in check with at most three threads and a preemption bound
//! (see the README's Verification section). scc under loom needs a
//! deterministic hasher, so [`DefaultHashBuilder`] is a fixed-seed hasher
//! there.
//!
//! A normal build never enables scc's `loom` feature: a loom-instrumented map
//! used outside `loom::model` panics. That is why the switch is a `cfg` and
//! not a cargo feature: features are unified across a build, so
//! `--all-features` would have turned every ordinary test into a loom one.

#[cfg(not(loom))]
pub use std::sync::{Arc, Mutex, MutexGuard};

#[cfg(loom)]
pub use loom::sync::{Arc, Mutex, MutexGuard};

/// The concurrent map: per-key atomic closures, bucket-by-bucket iteration.
pub use scc::{Equivalent, HashMap};

/// The hasher a recorder uses unless told otherwise.
#[cfg(not(loom))]
pub type DefaultHashBuilder = std::collections::hash_map::RandomState;

/// Deterministic under loom, where scc requires it.
#[cfg(loom)]
pub type DefaultHashBuilder =
    std::hash::BuildHasherDefault<std::collections::hash_map::DefaultHasher>;

/// Locks `mutex`, ignoring poisoning: the only code that can panic under the
/// locks of this crate is a waker's clone or drop in `signal.rs`, which
/// leaves the latch consistent, and a lock that could panic here would wedge
/// an id.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
