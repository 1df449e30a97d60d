//go:build linux

// Package bench holds prepull's benchmarks against the real parts: the real
// prepull binary, a real Docker Engine, a real registry with a login and
// real OpenSSH servers, all on loopback, started by internal/testenv. Each
// benchmark measures a peer in the same run (docker login + docker pull,
// unzip, one-shot pulls, one host) and reports its figures as ratios against
// that peer, besides the absolute medians.
//
// The benchmarks never assert a time: they report. They run only with
// -bench and PREPULL_E2E=1 (testenv.Require skips them otherwise), one
// invocation each with -benchtime 1x; the runs that must alternate are
// repeated a fixed number of times inside that invocation. scripts/bench.sh
// is the one command that runs them all and prints the summary table that
// docs/benchmarks.md records. When PREPULL_BENCH_SUMMARY names a file, each
// figure is appended to it as one tab-separated line.
package bench

import (
	"testing"

	"github.com/prepull/prepull/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }
