#!/usr/bin/env bash
# Bench smoke: proves the benches, the report generator and the stress run
# work, in a few minutes. Numbers from this pass are not meaningful
# (BENCH_QUICK=1 takes tiny samples); the full run is a plain `cargo bench`.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

echo "== compile every bench and example"
cargo bench --no-run
cargo build --release --examples -p stress -p bench-report

echo "== quick criterion pass"
BENCH_QUICK=1 cargo bench --bench single --bench contention --bench scale

echo "== summary and plots from that pass"
cargo run --release -p bench-report -- --out "$scratch"
test -s "$scratch/summary.md"
plots=("$scratch"/throughput_*.svg)
test "${#plots[@]}" -eq 4

echo "== short stress run"
cargo run --release -p stress -- --ids 10000 --launches 100000 --workers 8 --seed 7

echo "== the stress audit's bites and option checks"
# The audit's unit tests feed it bad ledgers and a recorder that takes
# failures for successes; the integration tests refuse bad options.
cargo test -p stress

echo "bench smoke: ok"
