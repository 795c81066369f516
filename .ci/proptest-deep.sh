#!/usr/bin/env bash
# Deep proptest pass, release mode: 50,000 sequential model sequences, and
# 3,000 concurrent schedules plus 3,000 wait storms, each checked for
# linearizability. A plain `cargo test` runs the same properties with few cases.
# Each run must report exactly the tests it names, so a renamed test cannot
# turn the pass into a silent no-op.
set -euo pipefail
cd "$(dirname "$0")/.."

# run_exact EXPECTED_PASSED CASES TEST NAME...
run_exact() {
    local expected=$1 cases=$2 test=$3
    shift 3
    local log
    log=$(mktemp)
    PROPTEST_CASES="$cases" cargo test --release --test "$test" -- --exact "$@" 2>&1 | tee "$log"
    grep -q "test result: ok. $expected passed" "$log" || {
        echo "proptest-deep: expected $expected passed in $test" >&2
        exit 1
    }
}

run_exact 1 "${PROPTEST_SEQUENTIAL_CASES:-50000}" prop_sequential \
    the_recorder_agrees_with_the_spec_after_every_step

run_exact 2 "${PROPTEST_CONCURRENT_CASES:-3000}" prop_concurrent \
    concurrent_schedules_keep_every_property \
    the_recorder_keeps_every_property_in_wait_storms
