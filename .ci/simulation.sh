#!/usr/bin/env bash
# The deterministic simulation of the PostgreSQL client code
# (pg/tests/simulation.rs), in release: SIM_SEEDS seeds in each of its four
# fault classes (default 10,000, about a minute), every property checked on
# every run, then its bites; and the client-protocol model
# (harness/tests/client_model.rs). With SIM_DEEP=1 (by hand): 250,000 seeds
# per class, 10^6 runs in all, in two processes, and the model's deep scopes.
# Each run must report exactly the tests it names.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

pg=async_tasks_recorder_pg
every=every_seed_keeps_every_property
cargo test --release -p $pg --test simulation --no-run

if [ "${SIM_DEEP:-0}" = 1 ]; then
    per_class=250000 half=125000
    for first in 0 $half; do
        SIM_FIRST_SEED=$first SIM_SEEDS=$half \
            cargo test --release -p $pg --test simulation -- --exact $every --nocapture \
            >"$scratch/deep-$first.log" 2>&1 &
    done
    wait
    for first in 0 $half; do
        cat "$scratch/deep-$first.log"
        expect_passed "$scratch/deep-$first.log" 1 "simulation seeds from $first"
    done
    echo "deep simulation: $per_class seeds per class passed (10^6 runs)"
    CLIENT_MODEL_DEEP=1 cargo test --release -p async_tasks_recorder_harness --test client_model \
        -- --nocapture 2>&1 | tee "$scratch/model.log"
    exit 0
fi

SIM_SEEDS="${SIM_SEEDS:-10000}" \
    cargo test --release -p $pg --test simulation -- --exact $every --nocapture 2>&1 |
    tee "$scratch/seeds.log"
expect_passed "$scratch/seeds.log" 1 "the simulation's seeds"

cargo test --release -p $pg --test simulation -- bite one_seed --nocapture 2>&1 |
    tee "$scratch/bites.log"
expect_passed "$scratch/bites.log" 7 "the simulation's bites and replay"
grep -E "^[A-Za-z(]+.* broke [a-z_]+ at seed [0-9]+:$" "$scratch/bites.log"

cargo test --release -p async_tasks_recorder_harness --test client_model -- --nocapture 2>&1 |
    tee "$scratch/model.log"
expect_passed "$scratch/model.log" 11 "the client-protocol model"
