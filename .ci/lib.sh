# What the .ci scripts share. Source it first thing, after
# `set -euo pipefail`: it moves to the repository root and gives a scratch
# folder, $scratch, removed on exit.
#   set -euo pipefail
#   . "$(dirname "$0")/lib.sh"
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# fail MESSAGE: says which script failed and why, and stops.
fail() {
    echo "$(basename "$0" .sh): $*" >&2
    exit 1
}

# expect_passed LOG EXPECTED WHAT: the cargo test log LOG must report
# exactly EXPECTED tests passed and none failed, so that a renamed or
# compiled-out test cannot turn a run into a silent no-op.
expect_passed() {
    grep -q "test result: ok. $2 passed; 0 failed" "$1" || fail "expected $2 passed in $3"
}

# run_exact PACKAGE EXPECTED_PASSED CASES TEST NAME...: runs the named
# tests of one test target of PACKAGE in release mode with
# PROPTEST_CASES=CASES, and requires exactly EXPECTED_PASSED of them to
# pass. An empty PACKAGE is the library at the root (`-p` cannot name it:
# the published 2.x it is benchmarked against has the same name).
run_exact() {
    local package=$1 expected=$2 cases=$3 test=$4
    shift 4
    local log="$scratch/${package:-root}-$test.log" select=()
    [ -z "$package" ] || select=(-p "$package")
    PROPTEST_CASES="$cases" cargo test --release "${select[@]}" --test "$test" \
        -- --exact "$@" 2>&1 | tee "$log"
    expect_passed "$log" "$expected" "$test"
}

# need_command COMMAND DEBIAN_PACKAGE: installs the package when the
# command is missing (as root, as .ci/postgres.sh does for PostgreSQL).
need_command() {
    command -v "$1" >/dev/null && return
    [ "$(id -u)" -eq 0 ] || fail "missing $1: install the Debian package $2 (as root)"
    DEBIAN_FRONTEND=noninteractive apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y "$2"
    command -v "$1" >/dev/null || fail "apt-get installed $2 but no $1 on PATH"
}
