#!/usr/bin/env bash
# Deep pass of the PostgreSQL backend against the fenced spec: 2,000 random
# sequences compared step by step, 300 concurrent histories checked for
# linearizability, on a throwaway cluster the tests start themselves.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/postgres.sh
ATR_PG_SEQUENCES="${ATR_PG_SEQUENCES:-2000}" ATR_PG_HISTORIES="${ATR_PG_HISTORIES:-300}" \
    cargo test --release -p async_tasks_recorder_pg --test model -- --nocapture
