//go:build linux

// Package metrics holds prepull's end-to-end tests of one area (see package
// e2e): the agent's metrics_file, read by promtool and a real node exporter.
package metrics

import (
	"testing"

	"github.com/prepull/prepull/internal/e2e"
)

func TestMain(m *testing.M) { e2e.Main(m) }
