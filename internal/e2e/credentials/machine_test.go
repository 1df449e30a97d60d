//go:build linux

package credentials

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prepull/prepull/internal/e2e"
)

// TestMachineDockerLoginUntouched proves that the test command's setup left
// the machine's own docker login as it was: with the machine's PATH (the one
// go test runs with, without testenv.ToolsDir) and a fresh DOCKER_CONFIG,
// `docker login` to a registry succeeds and writes the login into that
// config.json. Were pass or docker-credential-pass installed on the machine,
// the CLI would pick pass as its store and fail ("pass not initialized").
func TestMachineDockerLoginUntouched(t *testing.T) {
	f := e2e.NewFixture(t, "proj/machine-login")
	config := t.TempDir()
	cmd := exec.Command("/usr/bin/docker", "login", "--username", f.Reg.User, "--password-stdin", f.Reg.Addr)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "DOCKER_CONFIG=" + config, "DOCKER_HOST=" + f.Docker.Host}
	cmd.Stdin = strings.NewReader(f.Reg.Password)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker login with the machine's PATH %s: %v\n%s", os.Getenv("PATH"), err, out)
	}
	data, err := os.ReadFile(filepath.Join(config, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Auths      map[string]struct{ Auth string }
		CredsStore string
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		t.Fatalf("config.json: %v\n%s", err, data)
	}
	want := base64.StdEncoding.EncodeToString([]byte(f.Reg.User + ":" + f.Reg.Password))
	if cfg.CredsStore != "" || cfg.Auths[f.Reg.Addr].Auth != want {
		t.Fatalf("config.json after docker login to %s holds no login of its own (credsStore %q):\n%s", f.Reg.Addr, cfg.CredsStore, data)
	}
}
