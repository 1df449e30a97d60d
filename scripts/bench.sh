#!/usr/bin/env bash
# bench.sh: prepull's one benchmark command, run by hand, its output recorded
# in docs/benchmarks.md. As root it installs the parts the benchmarks run
# against (a Docker Engine, a registry with a login, OpenSSH servers), builds
# prepull, runs the Go benchmarks of internal/bench against those real parts
# and the pak reader's microbenchmark, and prints one table: each figure,
# prepull's value, its peer's (measured in the same run), the ratio, the
# issue's target and whether it was met. Nothing fails on a missed target:
# the table says so.
#
#   scripts/bench.sh                   # everything (about 10 minutes)
#   scripts/bench.sh --write           # everything, and docs/benchmarks.md's run, machine and figures written from it
#   BENCH=Inspect scripts/bench.sh     # only the benchmarks matching a regexp
#
# Measure on a quiet machine: the script waits up to QUIET_WAIT seconds
# (default 600) for the 1-minute load average to drop below 1.0, then goes
# on anyway and reports the load it saw.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

BENCH="${BENCH:-.}"
QUIET_WAIT="${QUIET_WAIT:-600}"
DOC=docs/benchmarks.md
write=false
case "${1:-}" in
  --write) write=true ;;
  "") ;;
  *) die "usage: scripts/bench.sh [--write]" ;;
esac
# The figures in $DOC are one whole run's, never typed or pieced together.
[[ $write == false || $BENCH == . ]] || die "--write records a whole run: leave BENCH unset"

[[ "$(id -u)" -eq 0 ]] || die "run bench.sh as root: the benchmarks start their own dockerd and sshd"

section "parts (Debian packages)"
install_missing "${TEST_PARTS[@]}"
# GNU time measures the peak RSS of short-lived commands (see
# internal/bench/measure_test.go: peakRSS): unpacked, never installed.
unpack_gnu_time

out="$(mktemp -d /tmp/prepull-bench.XXXXXX)"
summary="$out/summary.tsv"
: >"$summary"

section "build"
go build -o "$out/prepull" ./cmd/prepull
ls -l "$out/prepull"

# write_doc replaces what lies between the begin and end lines of $DOC with
# this run: its date, commit and machine, and the summary table.
write_doc() {
  local begin='<!-- begin bench: written by scripts/bench.sh --write from one run; do not edit -->'
  local end='<!-- end bench -->'
  grep -qxF "$begin" "$DOC" && grep -qxF "$end" "$DOC" || die "$DOC has no lines $begin and $end"
  {
    echo "One run of \`scripts/bench.sh --write\`; the load average was $load_before before it and $load_after after it."
    echo
    echo '| | |'
    echo '| --- | --- |'
    sed -E 's/^([a-z /]+):[[:space:]]+(.*)$/| \1 | \2 |/' "$out/machine.txt"
    echo
    cat "$out/summary.md"
  } >"$out/doc-block.md"
  awk -v begin="$begin" -v end="$end" -v block="$out/doc-block.md" '
    $0 == begin { print; while ((getline line < block) > 0) print line; skip = 1; next }
    $0 == end { skip = 0 }
    !skip' "$DOC" >"$out/doc.md"
  cat "$out/doc.md" >"$DOC"
}

section "machine"
machine() {
  printf 'date:      %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  printf 'commit:    %s%s\n' "$(git rev-parse --short HEAD 2>/dev/null || echo '?')" \
    "$(git diff --quiet HEAD -- . 2>/dev/null || echo ' (work tree differs)')"
  printf 'cpu:       %s x %s\n' "$(nproc)" "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
  printf 'memory:    %s\n' "$(free -h | awk '/^Mem:/ {print $2}')"
  printf 'kernel:    %s\n' "$(uname -sr)"
  printf 'os:        %s\n' "$(. /etc/os-release && echo "$PRETTY_NAME")"
  printf 'docker:    %s (storage driver vfs, the harness default)\n' "$(/usr/bin/docker --version)"
  printf 'registry:  %s\n' "$(docker-registry --version 2>/dev/null | head -1)"
  printf 'sshd:      %s\n' "$(/usr/sbin/sshd -V 2>&1 | head -1)"
  printf 'go:        %s\n' "$(go version)"
  printf 'disk /tmp: %s\n' "$(df -h /tmp | awk 'NR == 2 {print $1 " " $2}')"
}
machine | tee "$out/machine.txt"

section "waiting for a quiet machine (1-minute load < 1.0, up to ${QUIET_WAIT}s)"
waited=0
while :; do
  load1="$(cut -d' ' -f1 /proc/loadavg)"
  if awk -v l="$load1" 'BEGIN {exit !(l < 1.0)}'; then
    echo "load $load1: quiet"
    break
  fi
  if ((waited >= QUIET_WAIT)); then
    echo "load $load1 after ${waited}s: going on anyway (the load is in the table)"
    break
  fi
  sleep 15
  waited=$((waited + 15))
done
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"

section "pak reader microbenchmark (in process)"
go test -run '^$' -bench 'BenchmarkOpenLargePak' -benchmem -count 1 ./internal/pak | tee "$out/pak.txt"
# BenchmarkOpenLargePak/1024MiB-2  N  12345 ns/op  6789 B/op  12 allocs/op
awk -v OFS='\t' '/^BenchmarkOpenLargePak\// {
    split($1, name, "/"); size = name[2]; sub(/-[0-9]+$/, "", size)
    printf "pak.OpenFile in process, %s pak (%s B, %s allocs/op)\t%.1f us\t-\t-\tflat in size\tyes\t-\n", size, $5, $7, $3 / 1000
  }' "$out/pak.txt" >>"$summary"

section "benchmarks against the real parts (internal/bench)"
set +e
PREPULL_E2E=1 PREPULL_BENCH_SUMMARY="$summary" \
  go test -run '^$' -bench "$BENCH" -benchtime 1x -count 1 -timeout 60m ./internal/bench >"$out/bench.txt" 2>&1
status=$?
set -e
# dockerd's own log lines (time="...") only show after a failure.
grep -v -e '^[[:space:]]*time=' "$out/bench.txt"
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"

section "summary"
# A Markdown table, to paste into docs/benchmarks.md as it is.
{
  printf 'figure\tprepull\tpeer\tratio\ttarget\tmet?\tload (1/5/15 min)\n'
  printf -- '---\t---\t---\t---\t---\t---\t---\n'
  cat "$summary"
} | awk -F'\t' '{ line = "|"; for (i = 1; i <= 7; i++) { c = $i; gsub(/\|/, "\\|", c); line = line " " c " |" } print line }' |
  tee "$out/summary.md"
echo
echo "load average before: $load_before; after: $load_after"
missed="$(awk -F'\t' '$6 == "no"' "$summary" | wc -l)"
echo "targets missed: $missed (see docs/benchmarks.md for why)"
echo "raw output, summary.tsv and machine facts: $out"
if [[ $write == true ]]; then
  ((status == 0)) || die "the benchmarks failed: $DOC left as it was"
  write_doc
  echo "wrote the run's figures into $DOC"
fi
exit "$status"
