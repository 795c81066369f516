//! The verification harness of `async_tasks_recorder`, written once and run
//! against every backend.
//!
//! - [`protocol`]: the operations every checker drives ([`protocol::Protocol`]).
//! - [`subject`]: a protocol plus the operations only a full recorder has
//!   ([`subject::Subject`]), and [`subject::Via`], which builds them for a
//!   bare protocol.
//! - [`support`]: the helpers every test side shares (a lock that ignores
//!   poisoning, one poll, [`support::CatchUnwind`], quiet deliberate panics,
//!   case counts, a seeded generator).
//! - [`linearizability`]: the Wing–Gong–Lowe checker, generic over a
//!   sequential [`linearizability::Model`].
//! - [`operation`] and [`history`]: what a concurrent run observes of each
//!   id, its model against `spec::step` ([`operation::StepSpec`]), and the
//!   run's log.
//! - [`bounded`]: waits that fail within seconds, naming the id, not hang.
//! - [`explore`]: an explicit-state model checker (breadth first, shortest
//!   counterexamples), [`failover`]: the fenced protocol through a
//!   PostgreSQL promotion, as a model for it, and [`client_model`]: the
//!   PostgreSQL backend's client protocol (grants, renewals, the fenced
//!   finish loop, the sweeper) with lost replies and lapsing leases.
//! - [`paging`]: the paged listing's check, pages against a model while ids
//!   come and go between them.
//! - [`sequential`]: the model test, step by step against the spec.
//! - [`concurrent`]: random launch-fail-retry schedules and the six
//!   properties every run must keep.
//!
//! The last two, built on proptest, are the default `checkers` feature; a
//! tool that only needs [`support`] turns it off.
//!
//! A backend is checked by implementing [`subject::Subject`] (plus
//! `Default`, a fresh empty recorder) and calling
//! [`sequential::check`] and [`concurrent::run_schedule`].

pub mod backend;
pub mod bounded;
pub mod client_model;
#[cfg(feature = "checkers")]
pub mod concurrent;
pub mod explore;
pub mod failover;
pub mod history;
pub mod linearizability;
pub mod operation;
pub mod paging;
pub mod protocol;
#[cfg(feature = "checkers")]
pub mod sequential;
pub mod subject;
pub mod support;
