#!/usr/bin/env bash
# Deep proptest pass, release mode: 50,000 sequential model sequences, and
# 3,000 concurrent schedules plus 3,000 wait storms, each checked for
# linearizability. A plain `cargo test` runs the same properties with few cases.
# Each run must report exactly the tests it names, so a renamed test cannot
# turn the pass into a silent no-op.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

# The library at the root.
lib=""
run_exact "$lib" 1 "${PROPTEST_SEQUENTIAL_CASES:-50000}" prop_sequential \
    the_recorder_agrees_with_the_spec_after_every_step

run_exact "$lib" 2 "${PROPTEST_CONCURRENT_CASES:-3000}" prop_concurrent \
    concurrent_schedules_keep_every_property \
    the_recorder_keeps_every_property_in_wait_storms
