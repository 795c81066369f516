#!/usr/bin/env bash
# Installs the PostgreSQL server binaries that the pg/ tests start a
# throwaway cluster from, when they are missing. Debian keeps them under
# /usr/lib/postgresql/<version>/bin, not on PATH.
set -euo pipefail
if compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
    echo "postgresql server binaries: $(ls -d /usr/lib/postgresql/*/bin | tr '\n' ' ')"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "missing /usr/lib/postgresql/*/bin/initdb: install the Debian package postgresql (as root)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y postgresql
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || {
    echo "apt-get installed postgresql but no initdb under /usr/lib/postgresql/*/bin" >&2
    exit 1
}
