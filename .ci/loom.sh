#!/usr/bin/env bash
# Loom model checking of the recorder's own code (scc's loom build included),
# release mode. Every model in tests/loom.rs must pass every interleaving
# within its preemption bound (set in the file: 3 for two-thread models, 1 for
# three-thread ones, 2 for the mutants' base, the bound of the bites it
# controls), and every bite test must see loom report the violation of its
# known-bad protocol or mutant. The run must report exactly the expected numbers
# of tests, explored models and bites, so an empty or compiled-out loom file,
# or a test that stops exploring, cannot pass.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

models=20
bites=7
expected=$((models + bites))

log="$scratch/loom.log"

# The bounds are the models' own: LOOM_MAX_PREEMPTIONS would override them.
# loom is a cfg, never a cargo feature (see src/sync.rs); debug assertions
# stay on so loom's own checks run in the release build.
export RUSTFLAGS="--cfg loom -C debug-assertions"
env -u LOOM_MAX_PREEMPTIONS cargo test --release --test loom 2>&1 | tee "$log"

expect_passed "$log" "$expected" "tests/loom.rs"
# Each model and bite prints one line when its exploration ends.
[ "$(grep -c 'loom model ' "$log")" -eq "$models" ] || fail "expected $models explored models"
[ "$(grep -c 'loom bite ' "$log")" -eq "$bites" ] || fail "expected $bites bites"
echo "loom: $models models and $bites bites passed"
