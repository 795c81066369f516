#!/usr/bin/env bash
# Mutation testing of src/ with cargo-mutants (installed here when missing).
# Every viable mutant must be caught by the root package's tests, or be
# listed, with the argument for its equivalence, in mutants/equivalent.md.
# A mutant that times out fails the run like a missed one: every wait in the
# tests is bounded (harness/src/bounded.rs), so a hang is a test bug.
#
#   bash .ci/mutants.sh            every mutant of src/ (about 15 min on 2 cores)
#   bash .ci/mutants.sh --changed  only the mutants on lines of src/ changed
#                                  since the last complete run, the commit named
#                                  in mutants/full-run; CI runs this
#
# MUTANTS_TIMEOUT (default 120 s) bounds each mutant's test run; the
# unmutated suite takes well under a minute. Further arguments go to
# cargo-mutants (e.g. `--file src/table.rs` to try one file).
set -euo pipefail
cd "$(dirname "$0")/.."

mode=full
if [ "${1:-}" = "--changed" ]; then
    mode=changed
    shift
fi

out="${MUTANTS_OUT:-target/mutants}"
# cargo-mutants creates $out but not its parent (no target/ on a fresh clone).
mkdir -p "$(dirname "$out")"
listed=mutants/equivalent.md

filter=()
if [ "$mode" = changed ]; then
    # The commit of the last complete run: its first line that is a hash.
    base=$(grep -m1 -oE '^[0-9a-f]{40}$' mutants/full-run || true)
    if [ -z "$base" ] || ! git cat-file -e "$base^{commit}" 2>/dev/null; then
        # A clone without that commit cannot tell what changed: test it all.
        echo "mutants: the complete run's commit in mutants/full-run is not in this clone; mutating all of src/"
    else
        # Against the work tree, so uncommitted edits are mutated too.
        diff="$(dirname "$out")/src-since-full-run.diff"
        git diff "$base" -- src/ >"$diff"
        if [ ! -s "$diff" ]; then
            echo "mutants: src/ is unchanged since the complete run at $base; nothing to mutate"
            exit 0
        fi
        echo "mutants: mutating the lines of src/ changed since the complete run at $base"
        filter=(--in-diff "$diff")
    fi
fi

if ! cargo mutants --version >/dev/null 2>&1; then
    # In cargo's own scratch directory, not a CARGO_TARGET_DIR set for the tests.
    env -u CARGO_TARGET_DIR cargo install --locked cargo-mutants --version 27.1.0
fi

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
    "${filter[@]}" \
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
equivalent=0
for kind in missed timeout; do
    [ -s "$results/$kind.txt" ] || continue
    while IFS= read -r mutant; do
        if ! grep -qxF "$mutant" <<<"$argued"; then
            echo "mutants: $kind and not argued equivalent: $mutant" >&2
            bad=$((bad + 1))
        elif [ "$kind" = missed ]; then
            equivalent=$((equivalent + 1))
        fi
    done < <(strip "$results/$kind.txt")
done
# An argument for a mutant that is now caught is stale, and so, after a
# complete run, is one for a mutant that no longer exists. A run over the
# changed lines makes only some mutants, so it can tell only the first.
# (grep reads all its input: with -q it could stop early, and pipefail would
# report the writer's broken pipe.)
had() { strip "$results/$1.txt" 2>/dev/null | grep -xF "$2" >/dev/null; }
while IFS= read -r mutant; do
    [ -n "$mutant" ] || continue
    if had caught "$mutant" || { [ ${#filter[@]} -eq 0 ] && ! had missed "$mutant"; }; then
        echo "mutants: listed in $listed but not missed: $mutant" >&2
        bad=$((bad + 1))
    fi
done <<<"$argued"

score="n/a"
if [ $((caught + missed)) -gt 0 ]; then
    score="$((100 * caught / (caught + missed)))%"
fi
echo "mutants: $caught caught, $missed missed ($equivalent argued equivalent)," \
    "$timeouts timed out, $unviable unviable; caught/(caught+missed) = $score"
if [ "$bad" -ne 0 ]; then
    echo "mutants: $bad mutant(s) neither caught nor argued equivalent" >&2
    exit 1
fi
echo "mutants: ok"
