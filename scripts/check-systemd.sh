#!/usr/bin/env bash
# check-systemd.sh: checks systemd/prepull.service with systemd-analyze:
# verify (syntax, directives, that ExecStart's binary exists) and the
# offline security analysis, whose overall exposure must be at most
# MAX_EXPOSURE (default 1.0, the bound TestSystemdBooted checks under a
# running systemd). It needs no running systemd.
#
# verify checks that ExecStart's binary exists, so the unit is checked as a
# temporary copy whose ExecStart points at a prepull built for the check.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

MAX_EXPOSURE="${MAX_EXPOSURE:-1.0}"
unit=systemd/prepull.service

command -v systemd-analyze >/dev/null || { echo "error: systemd-analyze not found (apt-get install systemd)" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
go build -o "$work/prepull" ./cmd/prepull
sed "s|/usr/local/bin/prepull|$work/prepull|g" "$unit" >"$work/prepull.service"

echo "--- systemd-analyze verify $unit"
# verify prints problems but exits 0 for some of them: any output fails.
out="$(systemd-analyze verify "$work/prepull.service" 2>&1)" || { printf '%s\n' "$out" >&2; exit 1; }
if [[ -n "$out" ]]; then
  printf '%s\n' "$out" >&2
  echo "error: systemd-analyze verify reported problems" >&2
  exit 1
fi
echo "ok"

echo "--- systemd-analyze security --offline=true $unit"
report="$(systemd-analyze security --offline=true --no-pager "$work/prepull.service" 2>&1)"
exposure="$(printf '%s\n' "$report" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')"
if [[ -z "$exposure" ]]; then
  printf '%s\n' "$report" >&2
  echo "error: no overall exposure level in the report" >&2
  exit 1
fi
printf '%s\n' "$report" | grep -v '^✓' || true
echo "exposure $exposure (at most $MAX_EXPOSURE allowed)"
if awk -v e="$exposure" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(e > m) }'; then
  echo "error: exposure $exposure is above $MAX_EXPOSURE" >&2
  exit 1
fi
