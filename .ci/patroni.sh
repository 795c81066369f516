#!/usr/bin/env bash
# The production shape of a failover: what operators run, from Debian
# packages, on loopback only. Three etcd members and two PostgreSQL 15
# nodes managed by Patroni in `synchronous_mode` with
# `synchronous_mode_strict` (`synchronous_commit = on`); the fault run is
# pointed at them through a multi-host string with
# target_session_attrs=read-write while this script kills the leader's
# postmaster with SIGKILL (twice if time allows) and leaves Patroni to
# promote the synchronous standby and bring the old leader back as its
# standby. The run's audit must pass.
#
# `primary_start_timeout: 0` makes Patroni fail over when the primary's
# PostgreSQL dies instead of restarting it in place (the default waits up
# to 300 s for a local restart): a crashed postmaster is then a failover,
# which is what this run is about. Everything runs under the scratch dir
# and is stopped and removed on exit; every wait is bounded.
#
# Measured per kill: from the SIGKILL to a new leader in Patroni's REST
# API, to the first write committed through the multi-host string (a
# commit waits for the synchronous standby, so this is also when the old
# leader streams again), and to the old leader listed as `sync_standby`.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
bash .ci/postgres.sh
need_command jq jq
need_command curl curl
need_command etcd etcd-server
need_command patroni patroni
pg_bin=/usr/lib/postgresql/15/bin
[ -x "$pg_bin/postgres" ] || fail "no PostgreSQL 15 under $pg_bin (Debian 12's postgresql package)"
cargo build --release -p stress

# 60 s, not 40: each kill stalls writes until the old leader streams again
# (synchronous_mode_strict, two nodes), and a zombie ordered to freeze in a
# stall freezes only at its next granted claim, after the stall; the audit
# asks a `Stale` finish of at least one zombie, and the last ~20 s are free
# of kills.
duration=60
stress_limit=240
# PostgreSQL refuses to run as root: as root, it and Patroni run as postgres.
as_pg=()
if [ "$(id -u)" -eq 0 ]; then
    as_pg=(runuser -u postgres --)
fi

# now_ms: milliseconds since the epoch.
now_ms() { date +%s%3N; }

# wait_for SECONDS WHAT COMMAND...: runs COMMAND every 0.2 s until it
# succeeds; after SECONDS, prints the logs and fails naming WHAT.
wait_for() {
    local limit=$1 what=$2
    shift 2
    local deadline=$((SECONDS + limit))
    until "$@"; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            logs
            fail "$what: not within ${limit}s"
        fi
        sleep 0.2
    done
}

# Twelve free loopback ports in a row, from a random base below the
# kernel's ephemeral range (where an outgoing connection may hold a port
# at any moment): etcd clients (+0..2) and peers (+3..5), Patroni's REST
# API (+6, +7), PostgreSQL (+8, +9). A port is free when no TCP socket in
# any state has it.
port_free() { [ -z "$(ss -Htan "sport = :$1" 2>/dev/null)" ]; }
ephemeral=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
blocks=$(((ephemeral - 12000) / 12))
[ "$blocks" -gt 0 ] || fail "no room for ports below the ephemeral range ($ephemeral)"
base=
for _ in $(seq 20); do
    candidate=$((12000 + (RANDOM % blocks) * 12))
    ok=1
    for p in $(seq "$candidate" $((candidate + 11))); do
        port_free "$p" || ok=0
    done
    if [ "$ok" -eq 1 ]; then
        base=$candidate
        break
    fi
done
[ -n "$base" ] || fail "no block of 12 free loopback ports found in 20 tries"
etcd_client=("$base" $((base + 1)) $((base + 2)))
etcd_peer=($((base + 3)) $((base + 4)) $((base + 5)))
rest=($((base + 6)) $((base + 7)))
pg_port=($((base + 8)) $((base + 9)))

# Processes this script started, stopped by cleanup (by pid, never by name).
etcd_pids=()
stress=
cleanup() {
    local pidfile pid data deadline
    # The stress run (under timeout, which passes SIGTERM on); its worker
    # processes end at their --duration.
    [ -z "$stress" ] || kill -TERM "$stress" 2>/dev/null || true
    for pidfile in "$scratch"/pg/node*/patroni.pid; do
        [ -f "$pidfile" ] || continue
        kill -TERM "$(cat "$pidfile")" 2>/dev/null || true
    done
    # Patroni stops its PostgreSQL on SIGTERM; give it 30 s.
    deadline=$((SECONDS + 30))
    for pidfile in "$scratch"/pg/node*/patroni.pid; do
        [ -f "$pidfile" ] || continue
        pid=$(cat "$pidfile")
        while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    for data in "$scratch"/pg/node*/data; do
        if [ -f "$data/postmaster.pid" ] && kill -0 "$(head -1 "$data/postmaster.pid")" 2>/dev/null; then
            timeout 30 "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$data" -m immediate -w stop >/dev/null 2>&1 || true
        fi
    done
    for pid in "${etcd_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    deadline=$((SECONDS + 10))
    for pid in "${etcd_pids[@]}"; do
        while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    rm -rf "$scratch"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# logs: the tail of every log, for a failure.
logs() {
    local log
    for log in "$scratch"/etcd*.log "$scratch"/pg/node*/patroni.log "$scratch"/pg/node*/data/log/*.log; do
        [ -f "$log" ] || continue
        echo "--- $log" >&2
        tail -n 30 "$log" >&2
    done
}

echo "--- three etcd members on 127.0.0.1:${etcd_client[*]}"
cluster=""
for i in 0 1 2; do
    cluster+="${cluster:+,}e$i=http://127.0.0.1:${etcd_peer[$i]}"
done
for i in 0 1 2; do
    etcd --name "e$i" --data-dir "$scratch/etcd$i" \
        --listen-client-urls "http://127.0.0.1:${etcd_client[$i]}" \
        --advertise-client-urls "http://127.0.0.1:${etcd_client[$i]}" \
        --listen-peer-urls "http://127.0.0.1:${etcd_peer[$i]}" \
        --initial-advertise-peer-urls "http://127.0.0.1:${etcd_peer[$i]}" \
        --initial-cluster "$cluster" --initial-cluster-state new \
        --initial-cluster-token "atr-$base" >"$scratch/etcd$i.log" 2>&1 &
    etcd_pids+=("$!")
done
etcd_healthy() {
    local port
    for port in "${etcd_client[@]}"; do
        curl -sf --max-time 2 "http://127.0.0.1:$port/health" | jq -e '.health == "true"' >/dev/null || return 1
    done
}
wait_for 60 "etcd healthy on all three members" etcd_healthy

echo "--- two Patroni nodes: REST 127.0.0.1:${rest[*]}, PostgreSQL 127.0.0.1:${pg_port[*]}"
password=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
mkdir -p "$scratch/pg"
chmod 755 "$scratch"
hosts=$(printf '127.0.0.1:%s,' "${etcd_client[@]}")
for i in 0 1; do
    dir="$scratch/pg/node$i"
    mkdir -p "$dir"
    cat >"$dir/patroni.yml" <<EOF
scope: atr
namespace: /atr-ci/
name: node$i
restapi:
  listen: 127.0.0.1:${rest[$i]}
  connect_address: 127.0.0.1:${rest[$i]}
etcd3:
  hosts: ${hosts%,}
bootstrap:
  dcs:
    ttl: 20
    loop_wait: 2
    retry_timeout: 5
    primary_start_timeout: 0
    synchronous_mode: true
    synchronous_mode_strict: true
    postgresql:
      use_pg_rewind: true
      remove_data_directory_on_rewind_failure: true
      parameters:
        synchronous_commit: "on"
        fsync: "on"
        max_connections: 200
        wal_log_hints: "on"
  initdb:
  - encoding: UTF8
  - data-checksums
  - no-locale
postgresql:
  listen: 127.0.0.1:${pg_port[$i]}
  connect_address: 127.0.0.1:${pg_port[$i]}
  data_dir: $dir/data
  bin_dir: $pg_bin
  pgpass: $dir/pgpass
  use_unix_socket: true
  authentication:
    superuser:
      username: postgres
      password: $password
    replication:
      username: replicator
      password: $password
    rewind:
      username: rewinder
      password: $password
  parameters:
    unix_socket_directories: $dir
    logging_collector: "on"
    log_directory: log
  pg_hba:
  - local all all trust
  - local replication all trust
  - host all all 127.0.0.1/32 scram-sha-256
  - host replication replicator 127.0.0.1/32 scram-sha-256
EOF
done
[ "${#as_pg[@]}" -eq 0 ] || chown -R postgres: "$scratch/pg"
# start_patroni I: node I's Patroni in the background; its pid in patroni.pid.
start_patroni() {
    local dir="$scratch/pg/node$1"
    # shellcheck disable=SC2016 # $$ is the inner shell's pid
    "${as_pg[@]}" sh -c 'echo $$ >"$1"; exec patroni "$2"' sh "$dir/patroni.pid" "$dir/patroni.yml" \
        >>"$dir/patroni.log" 2>&1 &
}
start_patroni 0
# The second node starts once the first has bootstrapped, so that it clones.
cluster_json() {
    curl -sf --max-time 2 "http://127.0.0.1:${rest[0]}/cluster" ||
        curl -sf --max-time 2 "http://127.0.0.1:${rest[1]}/cluster"
}
leader() {
    cluster_json | jq -r '.members[] | select(.role == "leader" and .state == "running") | .name'
}
has_leader() { [ -n "$(leader 2>/dev/null)" ]; }
wait_for 90 "a leader bootstrapped" has_leader
start_patroni 1
# healthy: one leader running and one synchronous standby running.
healthy() {
    cluster_json | jq -e '
        ([.members[] | select(.role == "leader" and .state == "running")] | length) == 1 and
        ([.members[] | select(.role == "sync_standby" and .state == "running")] | length) == 1' >/dev/null
}
wait_for 120 "a leader and a synchronous standby" healthy
cluster_json | jq -c '.members[] | {name, role, state, port, timeline}'

url="host=127.0.0.1,127.0.0.1 port=${pg_port[0]},${pg_port[1]} user=postgres password=$password"
url+=" dbname=postgres target_session_attrs=read-write connect_timeout=2"
# write_commits: a write commits through the multi-host string within 3 s.
# Under synchronous_mode_strict a commit waits for the synchronous standby.
# No statement_timeout: a cancelled wait would report a local-only commit.
write_commits() {
    timeout 3 "$pg_bin/psql" -X -q -v ON_ERROR_STOP=1 -d "$url" \
        -c "INSERT INTO patroni_probe DEFAULT VALUES" >/dev/null 2>&1
}
timeout 10 "$pg_bin/psql" -X -q -v ON_ERROR_STOP=1 -d "$url" \
    -c "CREATE TABLE patroni_probe (at timestamptz DEFAULT clock_timestamp())" ||
    fail "creating the probe table"
wait_for 30 "a first write committed" write_commits

echo "--- the fault run through Patroni, for ${duration}s; the leader's postmaster killed with SIGKILL"
timeout "$stress_limit" target/release/stress --backend postgres --database-url "$url" \
    --processes 4 --duration "$duration" --kill-every 7 --zombie-every 11 --terminate-every 5 \
    --json >"$scratch/run.json" 2>"$scratch/run.err" &
stress=$!
started=$SECONDS

# rewinds_of NODE: how many times NODE's Patroni ran pg_rewind (the old
# leader needs it when its WAL ran ahead of the standby's: commits it had
# written but the standby had not acknowledged, so never acknowledged).
rewinds_of() {
    grep -c 'INFO: pg_rewind exit code=' "$scratch/pg/$1/patroni.log" || true
}
# kill_leader: SIGKILL to the leader's postmaster, then the times (ms) to
# a new leader, a committed write and the old leader as sync_standby,
# appended to $scratch/promotions as one JSON line.
kill_leader() {
    local old data pid killed new_at write_at rejoin_at new rewinds rewound
    old=$(leader) || true
    [ -n "$old" ] || fail "no leader to kill"
    rewinds=$(rewinds_of "$old")
    data="$scratch/pg/$old/data"
    pid=$(head -1 "$data/postmaster.pid")
    killed=$(now_ms)
    kill -KILL "$pid"
    echo "killed the postmaster of $old (pid $pid) at $((SECONDS - started))s into the run"
    new_leader() {
        new=$(leader 2>/dev/null) && [ -n "$new" ] && [ "$new" != "$old" ]
    }
    wait_for 60 "a new leader after killing $old" new_leader
    new_at=$(now_ms)
    wait_for 90 "a write committed after killing $old" write_commits
    write_at=$(now_ms)
    rejoined() {
        cluster_json | jq -e --arg old "$old" \
            '.members[] | select(.name == $old and .role == "sync_standby" and .state == "running")' >/dev/null
    }
    wait_for 90 "$old back as the synchronous standby" rejoined
    rejoin_at=$(now_ms)
    new=$(leader) || true
    rewound=false
    [ "$(rewinds_of "$old")" -eq "$rewinds" ] || rewound=true
    echo "new leader $new after $((new_at - killed)) ms; a write committed after $((write_at - killed)) ms;" \
        "$old the synchronous standby after $((rejoin_at - killed)) ms (pg_rewind: $rewound)"
    jq -nc --arg old "$old" --arg new "$new" --argjson leader $((new_at - killed)) \
        --argjson write $((write_at - killed)) --argjson rejoin $((rejoin_at - killed)) --argjson rewound "$rewound" \
        '{killed: $old, new_leader: $new, leader_ms: $leader, write_ms: $write, rejoin_ms: $rejoin, rewound: $rewound}' \
        >>"$scratch/promotions"
}
# The first kill 8 s in; a second one once the cluster is whole again
# (the old leader back as the synchronous standby), if that leaves 15 s of
# the run for the recovery to be seen.
sleep 8
kill_leader
sleep 1
if [ $((SECONDS - started)) -lt $((duration - 15)) ]; then
    wait_for 30 "a leader and a synchronous standby before the second kill" healthy
    kill_leader
fi

rc=0
wait "$stress" || rc=$?
if [ "$rc" -ne 0 ] || ! jq -e '.passed == true' "$scratch/run.json" >/dev/null; then
    cat "$scratch/run.json" "$scratch/run.err" >&2
    logs
    fail "the fault run through Patroni failed its audit (exit $rc)"
fi
cat "$scratch/run.json"
jq -c . "$scratch/promotions"
echo "--- summary"
jq -r --slurpfile p "$scratch/promotions" '
    "operations: \(.operations)",
    "successes acknowledged: \(.successes_acknowledged) (audit passed: none lost)",
    "worker faults: \(.faults.kills) kill -9, \(.faults.zombies) zombies (\(.zombie_stale_finishes) Stale finishes after SIGCONT), \(.faults.terminations) pg_terminate_backend rounds (\(.faults.terminations_skipped) skipped: no primary)",
    "promotions by Patroni: \($p | length)",
    ($p[] | "  \(.killed) killed -> \(.new_leader) leader after \(.leader_ms) ms, write after \(.write_ms) ms, rejoined after \(.rejoin_ms) ms\(if .rewound then " (pg_rewind)" else "" end)")
    ' "$scratch/run.json"
echo "patroni run passed in ${SECONDS}s"
