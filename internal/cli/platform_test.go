package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"go.uber.org/zap"

	"github.com/prepull/prepull/internal/config"
	"github.com/prepull/prepull/internal/pak/paktest"
	"github.com/prepull/prepull/internal/pull"
)

// TestProxyOnly checks that agent, keep and status refuse to run on a
// workstation's system with exit 2 and say where they run, whatever their
// arguments, and that Linux runs them.
func TestProxyOnly(t *testing.T) {
	cfg := isolatedConfig(t, t.TempDir(), "")
	for _, goos := range []string{"windows", "darwin"} {
		for _, args := range [][]string{{"agent"}, {"status", "--json"}, {"keep", "--wait", "1s", `C:\paks\a.pak`}, {"keep"}} {
			t.Run(goos+"/"+strings.Join(args, " "), func(t *testing.T) {
				out, errOut, code := runWith(context.Background(), t, &globals{goos: goos}, append(args, "--config", cfg)...)
				want := "prepull " + args[0] + " runs on the Cloud Proxy (Linux), not on " + goos
				if code != ExitUsage || out != "" || !strings.Contains(errOut, want) {
					t.Errorf("exit %d, want %d with %q on stderr:\n%s%s", code, ExitUsage, want, out, errOut)
				}
			})
		}
	}
	if _, errOut, code := runWith(context.Background(), t, &globals{goos: "linux"}, "status", "--config", cfg); strings.Contains(errOut, "Cloud Proxy (Linux)") || code == ExitUsage {
		t.Errorf("status on linux: exit %d\n%s", code, errOut)
	}
}

// TestConfigUsage checks that --config's help names the default file of
// each system, and its variable, as that system's users write them.
func TestConfigUsage(t *testing.T) {
	env := map[string]string{"AppData": `C:\Users\Admin\AppData\Roaming`, "HOME": "/Users/admin"}
	for goos, want := range map[string]string{
		"linux":   "(default /etc/prepull/config.yaml, or $PREPULL_CONFIG;",
		"windows": `(default C:\Users\Admin\AppData\Roaming\prepull\config.yaml, or %PREPULL_CONFIG%;`,
		"darwin":  "(default /Users/admin/Library/Application Support/prepull/config.yaml, or $PREPULL_CONFIG;",
	} {
		if got := configUsage(goos, func(k string) string { return env[k] }); !strings.Contains(got, want) {
			t.Errorf("%s: %q does not say %q", goos, got, want)
		}
	}
	var out bytes.Buffer
	g := &globals{goos: "windows", stdout: &out, stderr: &out}
	t.Setenv("AppData", `C:\Users\Admin\AppData\Roaming`)
	root := newRootCommand(g)
	root.SetArgs([]string{"remote", "--help"})
	root.SetOut(&out)
	if err := root.Execute(); err != nil || !strings.Contains(out.String(), `C:\Users\Admin\AppData\Roaming\prepull\config.yaml`) {
		t.Errorf("remote --help as on Windows: %v\n%s", err, out.String())
	}
}

// TestSignalWords checks that an interrupted run's result and --help's
// exit codes name what ended it as each system's users know it: Windows
// has Ctrl-C and Ctrl-Break but no SIGINT, and its SIGTERM is a console
// closed, a log-off or a shutdown.
func TestSignalWords(t *testing.T) {
	for _, c := range []struct {
		goos, interrupted, terminated, help130, help143 string
	}{
		{"linux", "interrupted (Ctrl-C, SIGINT)", "terminated (SIGTERM)", "130  ended by Ctrl-C, SIGINT (", "143  ended by SIGTERM ("},
		{"darwin", "interrupted (Ctrl-C, SIGINT)", "terminated (SIGTERM)", "130  ended by Ctrl-C, SIGINT (", "143  ended by SIGTERM ("},
		{"windows", "interrupted (Ctrl-C)", "terminated (console closed, log-off or shutdown)", "130  ended by Ctrl-C or Ctrl-Break (", "143  ended by closing its console window, logging off or shutting"},
	} {
		if got := (interruption{os.Interrupt}).text(c.goos); got != c.interrupted {
			t.Errorf("%s: Ctrl-C says %q, want %q", c.goos, got, c.interrupted)
		}
		if got := (interruption{syscall.SIGTERM}).text(c.goos); got != c.terminated {
			t.Errorf("%s: SIGTERM says %q, want %q", c.goos, got, c.terminated)
		}
		var out bytes.Buffer
		root := newRootCommand(&globals{goos: c.goos, stdout: &out, stderr: &out})
		root.SetArgs([]string{"pull", "--help"})
		root.SetOut(&out)
		if err := root.Execute(); err != nil {
			t.Fatalf("%s: pull --help: %v", c.goos, err)
		}
		help := out.String()
		if !strings.Contains(help, c.help130) || !strings.Contains(help, c.help143) {
			t.Errorf("%s: pull --help does not say %q and %q:\n%s", c.goos, c.help130, c.help143, help)
		}
		if c.goos == "windows" && strings.Contains(help, "SIG") {
			t.Errorf("windows: pull --help names a signal:\n%s", help)
		}
	}
}

// TestPullerDesktop checks that the one-shot writes registry CAs into
// certs.d on Linux only: elsewhere its engine is Docker Desktop's.
func TestPullerDesktop(t *testing.T) {
	cfg := &config.Config{CertsDir: config.DefaultCertsDir}
	for goos, want := range map[string]pull.Puller{
		"linux":   {CertsDir: config.DefaultCertsDir},
		"windows": {DesktopOS: "windows"},
		"darwin":  {DesktopOS: "darwin"},
	} {
		p := (&globals{goos: goos}).puller(nil, cfg, nil, zap.NewNop())
		if p.CertsDir != want.CertsDir || p.DesktopOS != want.DesktopOS {
			t.Errorf("%s: CertsDir %q, DesktopOS %q; want %q, %q", goos, p.CertsDir, p.DesktopOS, want.CertsDir, want.DesktopOS)
		}
	}
}

// TestSSHFiles checks OpenSSH's default ssh_config and known_hosts files
// per system: Windows' own OpenSSH keeps them under %USERPROFILE%\.ssh and
// %ProgramData%\ssh.
func TestSSHFiles(t *testing.T) {
	env := map[string]string{"ProgramData": `C:\ProgramData`}
	for _, tt := range []struct {
		goos, home         string
		env                map[string]string
		configs, knownHost []string
	}{
		{"linux", "/home/admin", env, []string{"/home/admin/.ssh/config", "/etc/ssh/ssh_config"}, []string{"/home/admin/.ssh/known_hosts", "/etc/ssh/ssh_known_hosts"}},
		{"darwin", "/Users/admin", env, []string{"/Users/admin/.ssh/config", "/etc/ssh/ssh_config"}, []string{"/Users/admin/.ssh/known_hosts", "/etc/ssh/ssh_known_hosts"}},
		{"windows", `C:\Users\Admin`, env, []string{`C:\Users\Admin\.ssh\config`, `C:\ProgramData\ssh\ssh_config`}, []string{`C:\Users\Admin\.ssh\known_hosts`, `C:\ProgramData\ssh\ssh_known_hosts`}},
		{"windows", `D:\Users\Admin\`, nil, []string{`D:\Users\Admin\.ssh\config`}, []string{`D:\Users\Admin\.ssh\known_hosts`}},
	} {
		configs, knownHosts := sshFiles(tt.goos, tt.home, func(k string) string { return tt.env[k] })
		if !slices.Equal(configs, tt.configs) || !slices.Equal(knownHosts, tt.knownHost) {
			t.Errorf("sshFiles(%s, %s) = %q, %q; want %q, %q", tt.goos, tt.home, configs, knownHosts, tt.configs, tt.knownHost)
		}
	}
}

// TestMissingSocketSaysWhatToCheck checks that a Docker socket that is not
// there is said at once, with what to check on that system: the service on
// Linux, Docker Desktop on macOS.
func TestMissingSocketSaysWhatToCheck(t *testing.T) {
	dir := t.TempDir()
	cfg := isolatedConfig(t, dir, "")
	file := paktest.Pak{Kind: "Socket", Registry: paktest.Registry}.WriteFile(t, dir)
	sock := "unix://" + filepath.Join(dir, "docker.sock")
	for goos, want := range map[string]string{
		"linux":  "is Docker Engine installed and running (systemctl status docker)?",
		"darwin": "is Docker Desktop installed and running?",
	} {
		out, errOut, code := runWith(context.Background(), t, &globals{goos: goos}, "--config", cfg, "--docker-host", sock, file)
		if code != ExitEngine || !strings.Contains(out+errOut, "no Docker socket at "+filepath.Join(dir, "docker.sock")+": "+want) {
			t.Errorf("%s: exit %d, want %d and %q:\n%s%s", goos, code, ExitEngine, want, out, errOut)
		}
	}
}
