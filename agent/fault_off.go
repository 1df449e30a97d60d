//go:build !prepull_faults

package agent

// faultOn reports whether a fault is switched on: never, in every binary
// built without -tags prepull_faults (see fault_on.go).
func faultOn(string) bool { return false }
