#!/usr/bin/env bash
# Deep pass of the PostgreSQL backend, on throwaway clusters the tests start
# themselves:
# - the shared harness (pg/tests/harness.rs): 2,000 sequences of the model
#   test, 300 concurrent schedules and 30 wait storms, each history checked
#   for linearizability, the same checks the in-memory recorder passes;
# - the lease model (pg/tests/model.rs): 2,000 random sequences with lapses
#   and takeovers compared step by step with `spec::fenced_step`, and 300
#   concurrent histories checked for linearizability against it;
# - the simulated database against PostgreSQL (pg/tests/differential.rs):
#   2,000 random sequences run without faults on both, compared after
#   every step (answers, fences, rows), with its bites.
# Each run must report exactly the tests it names.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
bash .ci/postgres.sh

pg=async_tasks_recorder_pg
run_exact $pg 1 "${PG_HARNESS_SEQUENCES:-2000}" harness postgres_agrees_with_the_spec_after_every_step
run_exact $pg 1 "${PG_HARNESS_SCHEDULES:-300}" harness postgres_keeps_every_property_in_concurrent_schedules
run_exact $pg 1 "${PG_HARNESS_STORMS:-30}" harness postgres_keeps_every_property_in_wait_storms

ATR_PG_SEQUENCES="${ATR_PG_SEQUENCES:-2000}" ATR_PG_HISTORIES="${ATR_PG_HISTORIES:-300}" \
    cargo test --release -p $pg --test model -- --nocapture

DIFF_SEQUENCES="${DIFF_SEQUENCES:-2000}" \
    cargo test --release -p $pg --test differential -- --nocapture 2>&1 | tee "$scratch/differential.log"
expect_passed "$scratch/differential.log" 4 differential
