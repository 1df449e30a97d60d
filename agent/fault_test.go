//go:build !prepull_faults

package agent

import "testing"

// TestNoFaultWithoutTheTag: a binary built without the prepull_faults tag
// ignores PREPULL_FAULT.
func TestNoFaultWithoutTheTag(t *testing.T) {
	t.Setenv("PREPULL_FAULT", faultMoveBeforeSave)
	for _, f := range []string{faultMoveBeforeSave, faultInvalidToDone, faultLosePak} {
		if faultOn(f) {
			t.Errorf("fault %s is on in a binary built without -tags prepull_faults", f)
		}
	}
}
