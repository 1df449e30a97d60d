//go:build linux

package testenv

import (
	"os"
	"path/filepath"
	"testing"
)

// ToolsDir is where scripts/test.sh (scripts/lib.sh unpack_test_tools)
// unpacks the programs only the credential tests run: pass, Debian's
// docker-credential-pass and docker-credential-ecr-login, and GnuPG when
// the machine lacks it. They are never installed: on the machine's PATH,
// docker-credential-pass would become the store of every plain docker
// login there.
const ToolsDir = "/var/cache/prepull-test/tools"

// ToolsPath returns a PATH with ToolsDir's programs first, then the
// machine's own PATH, failing t loudly when they were not unpacked.
func ToolsPath(t testing.TB) string {
	t.Helper()
	Require(t)
	bin := filepath.Join(ToolsDir, "bin")
	for _, name := range []string{"pass", "docker-credential-pass", "docker-credential-ecr-login"} {
		if !isExecutable(filepath.Join(bin, name)) {
			t.Fatalf("testenv: %s not found in %s: scripts/test.sh as root unpacks pass and the credential helpers there (apt-get download, dpkg -x), never installing them", name, bin)
		}
	}
	return bin + string(os.PathListSeparator) + os.Getenv("PATH")
}
