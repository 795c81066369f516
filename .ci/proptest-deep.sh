#!/usr/bin/env bash
# Deep proptest pass, release mode: 10,000 sequential model sequences, and
# 1,000 concurrent schedules plus 1,000 wait storms, each checked for
# linearizability. A plain `cargo test` runs the same properties with few cases.
set -euo pipefail
cd "$(dirname "$0")/.."

PROPTEST_CASES="${PROPTEST_SEQUENTIAL_CASES:-10000}" \
    cargo test --release --test prop_sequential -- --exact \
    the_recorder_agrees_with_the_spec_after_every_step

PROPTEST_CASES="${PROPTEST_CONCURRENT_CASES:-1000}" \
    cargo test --release --test prop_concurrent -- --exact \
    concurrent_schedules_keep_every_property \
    the_recorder_keeps_every_property_in_wait_storms
