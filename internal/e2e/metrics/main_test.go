//go:build linux

// Package metrics holds prepull's end-to-end tests of one area (see package
// e2e): the agent's metrics_file, read by promtool and a real node exporter.
package metrics

import (
	"testing"

	"github.com/prepull/prepull/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }
