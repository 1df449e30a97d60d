#!/usr/bin/env bash
# test.sh: prepull's one test command, for people and CI alike. As root it
# first installs the parts the end-to-end tests run against and unpacks the
# tools only tests run into /var/cache/prepull-test (never installed, so
# the machine's own docker login works as before); then it checks
# formatting, runs go vet and staticcheck, runs every test with the race detector and the
# end-to-end tests on, and fuzzes each fuzz target for FUZZTIME (default 10s).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

FUZZTIME="${FUZZTIME:-10s}"

# check_gofmt fails when a Go file is not gofmt-formatted.
check_gofmt() {
  local unformatted
  unformatted="$(gofmt -l .)"
  if [[ -n "$unformatted" ]]; then
    printf 'not gofmt-formatted (run gofmt -w):\n%s\n' "$unformatted" >&2
    return 1
  fi
  echo "all Go files formatted"
}

# fuzz_targets prints "PACKAGE TARGET" for each fuzz target in the module.
fuzz_targets() {
  local file
  grep -rlE --include='*_test.go' --exclude-dir=.git --exclude-dir=testdata \
    '^func Fuzz[A-Za-z0-9_]*\(' . | sort | while read -r file; do
    grep -oE '^func Fuzz[A-Za-z0-9_]*' "$file" | while read -r _ name; do
      printf './%s %s\n' "$(dirname "${file#./}")" "$name"
    done
  done
}

# run_fuzz fuzzes each target on its own: go test takes one -fuzz target.
run_fuzz() {
  local -a targets
  local pkg name
  mapfile -t targets < <(fuzz_targets)
  if ((${#targets[@]} == 0)); then
    echo "no fuzz targets"
    return 0
  fi
  for target in "${targets[@]}"; do
    read -r pkg name <<<"$target"
    echo "--- fuzz $name in $pkg for $FUZZTIME"
    go test -run='^$' -fuzz="^${name}\$" -fuzztime="$FUZZTIME" "$pkg"
  done
}

section "parts (Debian packages)"
install_missing "${TEST_PARTS[@]}"
unpack_prometheus
unpack_test_tools
unpack_gnu_time

section "gofmt"
check_gofmt

section "go vet"
go vet ./...

section "cross-builds: the release for every target, twice, byte for byte (CGO_ENABLED=0)"
# A Linux-only call in code every system builds fails here, not on an
# admin's laptop: scripts/release.sh builds each target, twice, and the two
# releases must be the same bytes (reproducible); go vet checks each
# system's files (tests included; Linux-only test infrastructure carries
# linux build tags).
rel="$(mktemp -d)"
DIST="$rel/a" scripts/release.sh 0.0.0-test
DIST="$rel/b" scripts/release.sh 0.0.0-test
diff -r "$rel/a" "$rel/b" || die "scripts/release.sh is not reproducible: two builds of one commit differ"
(cd "$rel/a" && sha256sum -c --quiet SHA256SUMS) || die "dist/SHA256SUMS does not match the archives"
echo "release reproducible: $(wc -l <"$rel/a/SHA256SUMS") archives, SHA256SUMS checked"
rm -rf "$rel"
for goos in darwin windows; do
  GOOS="$goos" CGO_ENABLED=0 go vet ./...
  echo "vetted $goos"
done

section "staticcheck"
# A fixed release, fetched through the Go module proxy on first use.
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
echo "staticcheck clean"

section "dead code (deadcode -test)"
# A fixed release, as staticcheck. With -test the tests count as callers:
# what nothing calls, not even a test, is reported.
dead="$(go run golang.org/x/tools/cmd/deadcode@v0.39.0 -test ./...)"
[[ -z "$dead" ]] || die "functions nothing reaches (delete them):
$dead"
echo "no dead code"

section "complexity (gocyclo: no function above 20)"
# Functions short enough to read in one pass; tests, whose tables and
# steps read top to bottom, are not counted. A fixed release, as above.
go run github.com/fzipp/gocyclo/cmd/gocyclo@v0.6.0 -over 20 -ignore '_test\.go$' . ||
  die "functions above cyclomatic complexity 20 (listed above): split them"
echo "no function above complexity 20"

section "one package talks to Docker (internal/engine)"
# Docker's CLI config and credential-helper packages in credentials are
# fine; the engine's API and renderer are internal/engine's alone.
docker="$(go list -f '{{.ImportPath}}: {{join .Imports " "}}' ./... |
  grep -v '^github.com/prepull/prepull/internal/\(engine\|credentials\):' |
  grep -E ' github.com/(docker/docker|moby)/' || true)"
[[ -z "$docker" ]] || die "packages other than internal/engine import the Docker SDK:
$docker"
echo "only internal/engine imports the Docker SDK"

section "systemd unit (systemd-analyze verify and security)"
scripts/check-systemd.sh

section "install.sh (into a DESTDIR)"
scripts/test-install.sh

section "the README's demo (scripts/demo.sh)"
# The first command a new user runs: it must keep working.
if [[ "$(id -u)" -eq 0 ]]; then
  scripts/demo.sh >/tmp/prepull-demo.log 2>&1 || { tail -40 /tmp/prepull-demo.log >&2; die "scripts/demo.sh failed"; }
  grep '^present ' /tmp/prepull-demo.log >/dev/null || die "scripts/demo.sh did not end with the image present"
  echo "demo passed"
else
  echo "demo skipped: it needs root, as dockerd does"
fi

section "test roots (debootstrap, cached in /var/cache/prepull-test/rootfs)"
# Every Debian root a test runs something in, from the one list
# testenv.Roots, built before go test starts, so that its timeout bounds the
# tests alone: a fresh machine spends its minutes here, a cached one none.
if [[ "$(id -u)" -eq 0 ]]; then
  PREPULL_E2E=1 go test -count=1 -v -timeout 60m -run '^TestBuildRoots$' ./internal/testenv
else
  echo "roots skipped: debootstrap needs root, as the end-to-end tests do"
fi

section "go test -race: unit tests"
mapfile -t unit_pkgs < <(go list ./... | grep -v '/internal/e2e/')
PREPULL_E2E=1 go test -race -count=1 -timeout 15m "${unit_pkgs[@]}"

section "go test -race: end-to-end tests, one package per area"
# One area at a time (-p 1): each starts its own Docker Engine, and a loaded
# two-core machine is what the tests are written for, not two areas at once.
# The timeout is each area's: the slowest takes about 5 minutes cached.
mapfile -t e2e_pkgs < <(go list ./internal/e2e/... | grep -v '/internal/e2e/engines$')
PREPULL_E2E=1 go test -race -count=1 -p 1 -timeout 20m "${e2e_pkgs[@]}"

section "go test -race: the engine matrix, and docs/compatibility.md's table checked against it"
# matrixdoc prints the tests' output as go test -v does, then fails when
# the committed matrix's cases or outcomes differ from this run's (the
# engines' exact versions are recorded, not compared). To write it again:
#   PREPULL_E2E=1 go test -race -count=1 -json ./internal/e2e/engines | go run ./internal/e2e/engines/matrixdoc -write docs/compatibility.md
PREPULL_E2E=1 go test -race -count=1 -timeout 20m -json ./internal/e2e/engines |
  go run ./internal/e2e/engines/matrixdoc -echo -check docs/compatibility.md

section "benchmark smoke run (internal/bench, -short)"
# Every benchmark once, small (see smoke in internal/bench), so that the
# bench code keeps working; its figures mean nothing and are not recorded:
# docs/benchmarks.md's come from scripts/bench.sh --write.
PREPULL_E2E=1 go test -short -run '^$' -bench . -benchtime 1x -count 1 -timeout 20m ./internal/bench

section "fuzz"
run_fuzz

section "all checks passed"
