#!/usr/bin/env bash
# The fault run on PostgreSQL: 4 worker processes share a throwaway cluster
# for 45 s while every fault is injected at least once (kill -9 and a fresh
# process, SIGSTOP past the lease then SIGCONT, pg_terminate_backend, an
# immediate stop and restart of the database). It must pass its audit.
# Then two known-bad protocols must fail it, naming ids: finishes that
# ignore the fence, and leases judged by a client clock running ahead.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/postgres.sh
cargo build --release -p stress
bin=target/release/stress
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
common=(--backend postgres --processes 4 --workers 8 --ids 300 --json)

echo "--- fault run: every fault at least once; the audit must pass"
if ! timeout 180 "$bin" "${common[@]}" --lease-ms 1500 --duration 45 --kill-every 7 --zombie-every 9 \
    --terminate-every 5 --crash-every 13 >"$dir/run.json" 2>"$dir/run.err"; then
    cat "$dir/run.json" "$dir/run.err" >&2
    echo "the fault run failed its audit" >&2
    exit 1
fi
cat "$dir/run.json"
for fault in kills zombies terminations crashes zombie_stale_finishes; do
    n=$(grep -o "\"$fault\":[0-9]*" "$dir/run.json" | head -1 | cut -d: -f2)
    if [ "${n:-0}" -lt 1 ]; then
        echo "fault run: $fault is ${n:-missing}, expected at least 1" >&2
        exit 1
    fi
done

bite() {
    local name=$1 rule=$2
    shift 2
    echo "--- sabotage $name: the audit must fail naming ids ($rule)"
    if timeout 120 "$bin" "${common[@]}" --sabotage "$name" "$@" >"$dir/$name.json" 2>"$dir/$name.err"; then
        cat "$dir/$name.json" >&2
        echo "sabotage $name passed the audit: the audit cannot see it" >&2
        exit 1
    fi
    if ! grep -E "^  $rule.*: [0-9]+ ids: [0-9]" "$dir/$name.err"; then
        cat "$dir/$name.json" "$dir/$name.err" >&2
        echo "sabotage $name failed, but not by naming ids under: $rule" >&2
        exit 1
    fi
}
# A zombie bites only if it was frozen holding an attempt that another
# process then finishes in the same epoch; a frozen process holds one or two
# attempts at a time, and on a slow machine a single zombie missed about one
# run in five. Short leases fit five zombies in the same 14 s.
bite unfenced "two side effects in one epoch" --lease-ms 500 --duration 14 --zombie-every 2
bite client-clock "a live lease was taken over" --lease-ms 1500 --duration 8
echo "fault run passed; both sabotaged runs failed naming ids"
