package agent

// The faults that the model test must catch (internal/e2e/agent), each
// switched on by PREPULL_FAULT in a binary built with -tags prepull_faults
// (fault_on.go); in any other binary faultOn is false and they are dead code.
const (
	// faultMoveBeforeSave moves a pak to done/ or failed/ before the
	// state that records it is saved.
	faultMoveBeforeSave = "move-before-save"
	// faultInvalidToDone files a pak that names no pullable image in done/.
	faultInvalidToDone = "invalid-to-done"
	// faultLosePak deletes a pak instead of moving it.
	faultLosePak = "lose-pak"
)
