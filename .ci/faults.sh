#!/usr/bin/env bash
# The fault run on PostgreSQL: 4 worker processes share a throwaway cluster
# for 45 s while every fault is injected at least once (kill -9 and a fresh
# process, a zombie frozen with SIGSTOP for three leases right after a
# claim then let go on with SIGCONT, pg_terminate_backend, an
# immediate stop and restart of the database). It must pass its audit, and
# so must a shorter run through PgBouncer in transaction mode (--pooler).
# Then two known-bad protocols must fail it, naming ids: finishes that
# ignore the fence, and leases judged by a client clock running ahead.
# Last, failover: a run with a synchronous standby promoted twice must
# pass, and the same run with an asynchronous standby (the control) must
# fail, naming ids whose acknowledged successes were lost and whose fences
# were drawn again.
#
# The checks read the run's JSON report (one line on stdout with --json):
# `.passed`, the fault counts under `.faults` and `.zombie_stale_finishes`,
# and each violation's stable rule id (`.violations[].rule`) with its ids.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
bash .ci/postgres.sh
need_command jq jq
cargo build --release -p stress
bin=target/release/stress
common=(--backend postgres --processes 4 --workers 8 --ids 300 --json)

echo "--- fault run: every fault at least once; the audit must pass"
# A zombie freezes right after a claim, for three leases; the next one is
# due once it woke (about every 6.5 s at these leases).
if ! timeout 180 "$bin" "${common[@]}" --lease-ms 1500 --duration 45 --kill-every 7 --zombie-every 6 \
    --terminate-every 5 --crash-every 13 >"$scratch/run.json" 2>"$scratch/run.err"; then
    cat "$scratch/run.json" "$scratch/run.err" >&2
    fail "the fault run failed its audit"
fi
cat "$scratch/run.json"

# exercised REPORT WHAT: the run's report says it passed, with every fault
# injected at least once and a zombie's finish answered Stale.
exercised() {
    jq -e '.passed == true' "$1" >/dev/null || fail "$2: the report says it did not pass"
    for fault in .faults.kills .faults.zombies .faults.terminations .faults.crashes .zombie_stale_finishes; do
        n=$(jq "$fault // 0" "$1")
        [ "$n" -ge 1 ] || fail "$2: $fault is $n, expected at least 1"
    done
}
exercised "$scratch/run.json" "fault run"

echo "--- the same behind PgBouncer in transaction mode (--pooler, 25 s): the audit must pass"
if ! timeout 150 "$bin" "${common[@]}" --pooler --lease-ms 1500 --duration 25 --kill-every 6 --zombie-every 5 \
    --terminate-every 4 --crash-every 11 >"$scratch/pooled.json" 2>"$scratch/pooled.err"; then
    cat "$scratch/pooled.json" "$scratch/pooled.err" >&2
    fail "the fault run behind PgBouncer failed its audit"
fi
cat "$scratch/pooled.json"
exercised "$scratch/pooled.json" "fault run behind PgBouncer"

# bite NAME RULE_ID OPTION...: the run sabotaged by NAME must fail its
# audit with a violation of RULE_ID that names ids.
bite() {
    local name=$1 rule=$2
    shift 2
    echo "--- sabotage $name: the audit must fail naming ids under $rule"
    local report="$scratch/$name.json"
    if timeout 120 "$bin" "${common[@]}" --sabotage "$name" "$@" >"$report" 2>"$scratch/$name.err"; then
        cat "$report" >&2
        fail "sabotage $name passed the audit: the audit cannot see it"
    fi
    if ! jq -e -c --arg rule "$rule" \
        '.violations[] | select(.rule == $rule and .count > 0 and (.ids | length) > 0)' "$report"; then
        cat "$report" "$scratch/$name.err" >&2
        fail "sabotage $name failed, but not by naming ids under $rule"
    fi
}
# Under this sabotage a zombie bites only if another process claims and
# finishes its id with a success while it is frozen. Short leases fit
# several zombies in the same 14 s.
bite unfenced two_effects_in_one_epoch --lease-ms 500 --duration 14 --zombie-every 2
bite client-clock live_lease_taken_over --lease-ms 1500 --duration 8

echo "--- failover, synchronous standby: at least two promotions; the audit must pass"
# 26 s: the second promotion begins 16 s in and once took 6 s (waiting for
# the standby's WAL receiver), so a 22 s run had no time left for a success
# after it.
failover=(--lease-ms 1500 --duration 26 --failover-every 8)
if ! timeout 180 "$bin" "${common[@]}" "${failover[@]}" --replication sync \
    >"$scratch/sync.json" 2>"$scratch/sync.err"; then
    cat "$scratch/sync.json" "$scratch/sync.err" >&2
    fail "the synchronous failover run failed its audit"
fi
cat "$scratch/sync.json"
n=$(jq '.faults.failovers | length' "$scratch/sync.json")
[ "$n" -ge 2 ] || fail "synchronous failover run: $n promotions, expected at least 2"
jq -e '[.faults.failovers[] | .first_success_after_ms != null] | all' "$scratch/sync.json" >/dev/null ||
    fail "synchronous failover run: no success after a promotion"

echo "--- failover, asynchronous standby (the control): the audit must fail naming ids"
if timeout 180 "$bin" "${common[@]}" "${failover[@]}" --replication async \
    >"$scratch/async.json" 2>"$scratch/async.err"; then
    cat "$scratch/async.json" >&2
    fail "the asynchronous failover run passed: the audit cannot see a lost success"
fi
for rule in acknowledged_success_lost fence_reissued; do
    jq -e -c --arg rule "$rule" \
        '.violations[] | select(.rule == $rule and .count > 0 and (.ids | length) > 0) | {rule, count}' \
        "$scratch/async.json" || {
        cat "$scratch/async.json" "$scratch/async.err" >&2
        fail "the asynchronous failover run failed, but not by naming ids under $rule"
    }
done
echo "fault runs passed, direct and behind PgBouncer; both sabotaged runs and the asynchronous failover failed naming ids"
