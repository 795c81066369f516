#!/usr/bin/env bash
# Mutation testing of src/ with cargo-mutants (`cargo install cargo-mutants`).
# Every viable mutant must be caught by the root package's tests, or be
# listed, with the argument for its equivalence, in mutants/equivalent.md.
# A mutant that times out fails the run like a missed one: every wait in the
# tests is bounded (harness/src/bounded.rs), so a hang is a test bug.
#
# MUTANTS_TIMEOUT (default 120 s) bounds each mutant's test run; the
# unmutated suite takes well under a minute. Extra arguments go to
# cargo-mutants (e.g. `--file src/table.rs` to try one file).
set -euo pipefail
cd "$(dirname "$0")/.."

out="${MUTANTS_OUT:-target/mutants}"
# cargo-mutants creates $out but not its parent (no target/ on a fresh clone).
mkdir -p "$(dirname "$out")"
listed=mutants/equivalent.md

# The loom models need `--cfg loom` and run in .ci/loom.sh; the proptest
# suites run their plain `cargo test` cases (the deep pass is
# .ci/proptest-deep.sh). Only the library is mutated, and only its own tests
# run against each mutant. In place, so the mutants reuse target/ instead of
# building every dependency again in a copy: leave the tree alone meanwhile
# (cargo-mutants restores each file after its mutant).
# A failing mutant makes proptest record its counterexample in the tests'
# regression files; those belong to the mutant, not to the tree.
saved=$(mktemp -d)
trap 'cp -p "$saved"/* tests/ 2>/dev/null || true; rm -rf "$saved"' EXIT
cp -p tests/*.proptest-regressions "$saved"/ 2>/dev/null || true
before=$(ls tests/*.proptest-regressions 2>/dev/null || true)

status=0
cargo mutants \
    --package async_tasks_recorder \
    --in-place \
    --timeout "${MUTANTS_TIMEOUT:-120}" \
    --no-shuffle \
    --output "$out" \
    "$@" || status=$?
for file in tests/*.proptest-regressions; do
    grep -qxF "$file" <<<"$before" || rm -f "$file"
done
# 0: all caught; 2: some missed; 3: some timed out. Anything else (the
# unmutated tree failing, a usage error) is fatal before any verdict.
case $status in
0 | 2 | 3) ;;
*)
    echo "mutants: cargo mutants failed with exit code $status" >&2
    exit "$status"
    ;;
esac

results="$out/mutants.out"
# A mutant's name without its line and column, which move with every edit:
# "src/table.rs: replace && with || in Table<K, S>::step_slot".
strip() { sed -E 's/^([^:]+):[0-9]+:[0-9]+: /\1: /' "$@"; }
# The list holds one mutant per line: "- `NAME`: why it is equivalent".
argued=$( (grep -oE '^- `[^`]+`' "$listed" || true) | sed -E 's/^- `(.*)`$/\1/' | sort -u)

count() {
    if [ -f "$results/$1.txt" ]; then grep -c . "$results/$1.txt" || true; else echo 0; fi
}
caught=$(count caught)
missed=$(count missed)
timeouts=$(count timeout)
unviable=$(count unviable)

bad=0
for kind in missed timeout; do
    [ -s "$results/$kind.txt" ] || continue
    while IFS= read -r mutant; do
        if ! grep -qxF "$mutant" <<<"$argued"; then
            echo "mutants: $kind and not argued equivalent: $mutant" >&2
            bad=$((bad + 1))
        fi
    done < <(strip "$results/$kind.txt")
done
# An argument for a mutant that no longer exists, or is now caught, is stale.
while IFS= read -r mutant; do
    [ -n "$mutant" ] || continue
    if ! strip "$results/missed.txt" 2>/dev/null | grep -qxF "$mutant"; then
        echo "mutants: listed in $listed but not missed: $mutant" >&2
        bad=$((bad + 1))
    fi
done <<<"$argued"

score="n/a"
if [ $((caught + missed)) -gt 0 ]; then
    score="$((100 * caught / (caught + missed)))%"
fi
echo "mutants: $caught caught, $missed missed ($(grep -c . <<<"$argued" || true) argued equivalent)," \
    "$timeouts timed out, $unviable unviable; caught/(caught+missed) = $score"
if [ "$bad" -ne 0 ]; then
    echo "mutants: $bad mutant(s) neither caught nor argued equivalent" >&2
    exit 1
fi
echo "mutants: ok"
