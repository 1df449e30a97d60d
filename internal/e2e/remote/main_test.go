//go:build linux

// Package remote holds prepull's end-to-end tests of one area (see package e2e).
package remote

import (
	"testing"

	"github.com/prepull/prepull/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }
