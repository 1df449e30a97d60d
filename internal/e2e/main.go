//go:build linux

package e2e

import (
	"flag"
	"fmt"
	"os"
	"testing"

	"github.com/prepull/prepull/internal/testenv"
)

// Main is the TestMain of every area's package. With the end-to-end tests
// on (testenv.Enabled: PREPULL_E2E=1, or CI set) it is testenv.Main. Off,
// it runs none of them and says so in one plain line, so that go test shows
// the package as "[no tests to run]", not as a pass over skipped tests.
func Main(m *testing.M) {
	if testenv.Enabled() {
		testenv.Main(m)
		return
	}
	flag.Parse()
	if err := flag.Set("test.run", "^$"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	code := m.Run()
	fmt.Println("end-to-end tests skipped: set PREPULL_E2E=1 to run them against a real Docker Engine, registry and OpenSSH (scripts/test.sh and CI do)")
	os.Exit(code)
}
