//go:build linux

// Package e2e holds what prepull's end-to-end tests share: a fixture (one
// proxy's worth of real parts), the agent, remote and mirror harnesses, and
// the checks for leaked secrets. The tests themselves live in one package per
// area under internal/e2e/<area>/, so that each area's time shows by name.
// They run the real prepull binary against a real Docker Engine, a real
// registry with a login and real OpenSSH servers, all on loopback, started by
// internal/testenv. They run when PREPULL_E2E=1 or CI is set, and then fail,
// never skip, when a part is missing.
package e2e
