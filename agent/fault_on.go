//go:build prepull_faults

package agent

import "os"

// faultName is the fault PREPULL_FAULT switches on. This file is compiled
// only with -tags prepull_faults, into the binary that scripts/test.sh runs
// the model test against to show that the test catches each fault; the
// shipped binary has none (fault_off.go).
var faultName = os.Getenv("PREPULL_FAULT")

// faultOn reports whether the fault named is switched on.
func faultOn(name string) bool { return faultName == name }
