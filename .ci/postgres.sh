#!/usr/bin/env bash
# Installs what the pg/ tests start their throwaway clusters and poolers
# from, when it is missing: the PostgreSQL server binaries (Debian keeps
# them under /usr/lib/postgresql/<version>/bin, not on PATH) and PgBouncer
# (/usr/sbin/pgbouncer), for the tests and the fault run behind a pooler in
# transaction mode.
set -euo pipefail
missing=()
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ] || missing+=(pgbouncer)
if [ "${#missing[@]}" -eq 0 ]; then
    echo "postgresql server binaries: $(ls -d /usr/lib/postgresql/*/bin | tr '\n' ' ')"
    echo "pgbouncer: $(command -v pgbouncer || echo /usr/sbin/pgbouncer)"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "missing: ${missing[*]}: install the Debian package(s) ${missing[*]} (as root)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y "${missing[@]}"
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || {
    echo "apt-get installed postgresql but no initdb under /usr/lib/postgresql/*/bin" >&2
    exit 1
}
command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ] || {
    echo "apt-get installed pgbouncer but no pgbouncer on PATH or in /usr/sbin" >&2
    exit 1
}
