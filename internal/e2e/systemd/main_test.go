//go:build linux

// Package systemd holds prepull's end-to-end tests of one area (see package e2e).
package systemd

import (
	"testing"

	"github.com/prepull/prepull/internal/e2e"
)

func TestMain(m *testing.M) { e2e.Main(m) }
