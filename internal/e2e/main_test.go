// Package e2e holds prepull's end-to-end tests. They run the real prepull
// binary against a real Docker Engine, a real registry with a login and real
// OpenSSH servers, all on loopback, started by internal/testenv. They run
// when PREPULL_E2E=1 or CI is set, and then fail, never skip, when a part is
// missing.
package e2e

import (
	"testing"

	"github.com/prepull/prepull/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }
