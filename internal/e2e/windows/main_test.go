//go:build linux

// Package windows holds prepull's end-to-end tests of one area (see package
// e2e): the windows/amd64 binary, run under Wine (testenv.Wine), against the
// same real parts as the Linux binary's tests.
package windows

import (
	"testing"

	"github.com/prepull/prepull/internal/e2e"
)

func TestMain(m *testing.M) { e2e.Main(m) }
