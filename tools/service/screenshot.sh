#!/usr/bin/env bash
# A screenshot of the service's operators' page in headless Chromium: starts
# the service on a throwaway PostgreSQL cluster, drives some payments over
# HTTP (paid, failed, refunded, still running), and saves the page.
#
#   bash tools/service/screenshot.sh [OUT.png]   (default benches/results/service-page.png)
#
# Installs the Debian package `chromium` when it is missing (as root). Not a
# CI step: the picture is for the README.
set -euo pipefail
. "$(dirname "$0")/../../.ci/lib.sh"
out=${1:-benches/results/service-page.png}

need_command chromium chromium
need_command curl curl
cargo build --quiet -p service

target/debug/service --postgres --listen 127.0.0.1:0 --work-ms 3000 --fail-rate 0.25 \
    >"$scratch/stdout" 2>"$scratch/log" &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$scratch"' EXIT
base=
for _ in $(seq 300); do
    base=$(sed -n 's/^listening on \(http:[^ ]*\).*/\1/p' "$scratch/stdout")
    [ -n "$base" ] && break
    kill -0 "$pid" 2>/dev/null || fail "the service exited: $(cat "$scratch/log")"
    sleep 0.2
done
[ -n "$base" ] || fail "the service did not announce its address in 60 s"
echo "service at $base"

put() { curl -sS -o /dev/null -X PUT "$base/payments/$1"; }
for n in $(seq -w 1 40); do put "invoice-$n"; done
curl -sS -o /dev/null "$base/payments/invoice-40?wait=10"
# Refund the paid ones among the first five and pay them again (epoch 1),
# retry the failed ones, and start a few more: these still run when the
# picture is taken.
for n in 01 02 03 04 05; do
    if curl -sS -X DELETE "$base/payments/invoice-$n" | grep -q '"epoch":1'; then put "invoice-$n"; fi
done
for id in $(curl -sS "$base/payments?state=failed&limit=1000" | grep -o 'invoice-[0-9]*'); do put "$id"; done
for n in $(seq 41 46); do put "invoice-$n"; done

mkdir -p "$(dirname "$out")"
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars \
    --window-size=760,760 --screenshot="$out" "$base/?state=working" 2>"$scratch/chromium.log" ||
    fail "chromium failed: $(cat "$scratch/chromium.log")"
[ -s "$out" ] || fail "chromium wrote no screenshot"
echo "screenshot: $out"
curl -sS "$base/metrics" | grep '^payments_ids'
