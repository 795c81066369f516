#!/usr/bin/env bash
# The bite of `.ci/mutants.sh --changed`: a change to src/ that no test
# covers must fail it, naming the mutants. On main, src/ is usually unchanged
# since the complete run, so the CI step alone would prove nothing.
#
# In a scratch worktree of HEAD, src/lib.rs gains one function that no test
# calls; the changed-lines run must then report its two mutants as missed and
# not argued equivalent, and exit non-zero. Only the library's unit tests run
# against them (`--lib`), which keeps the bite to a minute or two.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

scratch=$(mktemp -d)
tree="$scratch/tree"
git worktree add --quiet --detach "$tree" HEAD
trap 'git -C "$root" worktree remove --force "$tree"; rm -rf "$scratch"' EXIT
# The script and its lists as they stand here, committed or not.
cp "$root/.ci/mutants.sh" "$tree/.ci/"
cp -r "$root/mutants/." "$tree/mutants/"
# Only the bite's own change is "changed": the lines main changed since the
# complete run are the CI step's business, and the bite runs the library's
# unit tests alone, which do not cover all of them.
sed -i -E "s/^[0-9a-f]{40}$/$(git -C "$root" rev-parse HEAD)/" "$tree/mutants/full-run"

cat >>"$tree/src/lib.rs" <<'EOF'

/// One past `x`: the function that `.ci/mutants-bite.sh` adds and no test calls.
#[doc(hidden)]
pub fn untested_successor(x: u32) -> u32 {
    x.wrapping_add(1)
}
EOF

log="$scratch/mutants.log"
status=0
# The worktree shares this tree's target/, so only the library is rebuilt.
CARGO_TARGET_DIR="$root/target" MUTANTS_OUT="$scratch/out" \
    bash "$tree/.ci/mutants.sh" --changed --cargo-test-arg=--lib >"$log" 2>&1 || status=$?
cat "$log"

fail() {
    echo "mutants bite: $1" >&2
    exit 1
}
[ "$status" -ne 0 ] || fail "the changed-lines run passed with an untested function in src/"
for value in 0 1; do
    want="mutants: missed and not argued equivalent: src/lib.rs: replace untested_successor -> u32 with $value"
    grep -qxF "$want" "$log" || fail "the run did not report: $want"
done
grep -q '^mutants: 0 caught, 2 missed' "$log" ||
    fail "the run mutated more than the changed lines"
echo "mutants bite: the changed-lines run failed, naming the untested function's 2 mutants"
