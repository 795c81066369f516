#!/usr/bin/env bash
# The PostgreSQL backend's test hooks exist only with its `test-hooks`
# feature: a crate that depends on it without the feature cannot shift a
# clock, pause renewals, name statements behind a pooler, send a known-bad
# statement, bring back a mutant of the client code or open a recorder on
# the simulated database. Checks a scratch
# crate that calls each hook twice, without the feature (every call must
# be refused by the compiler) and with it (it must compile), so that the
# gate is shown to be what stops it.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

root=$PWD
user="$scratch/user"
mkdir -p "$user/src"
cp Cargo.lock "$user/"
cat >"$user/src/main.rs" <<'RUST'
use async_tasks_recorder_pg::{Config, PgRecorder};
use std::time::Duration;

fn main() {
    let r = PgRecorder::<i64>::new(tokio_postgres::Config::new(), "t", Config::default()).unwrap();
    r.shift_clock(Duration::from_secs(3600));
    r.skew_client_clock(Duration::from_secs(3600));
    r.set_renewing(false);
    r.name_statements(true);
    let _ = async_tasks_recorder_pg::KnownBad::ALL;
    r.mutate(async_tasks_recorder_pg::Mutant::ResentFinishStale);
    let faults = async_tasks_recorder_pg::sim::Faults::NONE;
    let server = async_tasks_recorder_pg::sim::Server::new(1, tokio_postgres::types::Type::INT8, faults);
    let _ = PgRecorder::<i64>::simulated(&server, Config::default());
}
RUST

# check FEATURES: `cargo check` of the scratch crate, its output in $scratch/check.log.
check() {
    cat >"$user/Cargo.toml" <<TOML
[package]
name = "hooks_gate_user"
version = "0.0.0"
edition = "2024"
publish = false

[dependencies]
async_tasks_recorder_pg = { path = "$root/pg", features = [$1] }
tokio-postgres = "0.7"

[workspace]
TOML
    CARGO_TARGET_DIR="$root/target/hooks-gate" cargo check --offline --quiet \
        --manifest-path "$user/Cargo.toml" >"$scratch/check.log" 2>&1
}

if check ""; then
    fail "a crate without the test-hooks feature called the test hooks"
fi
for hook in shift_clock skew_client_clock set_renewing name_statements KnownBad mutate Mutant sim simulated; do
    grep -q "$hook" "$scratch/check.log" || {
        cat "$scratch/check.log" >&2
        fail "without the feature, $hook was not the refused name"
    }
done
check '"test-hooks"' || {
    cat "$scratch/check.log" >&2
    fail "with the test-hooks feature the hooks do not compile: the check above proves nothing"
}
echo "hooks-gate: 9 hooks refused without the test-hooks feature, compiled with it"
