//go:build linux

package systemd

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prepull/prepull/internal/e2e"
	"github.com/prepull/prepull/internal/pak/paktest"
	"github.com/prepull/prepull/internal/testenv"
)

// TestSystemdBooted runs the agent as the service install.sh installs, under
// a real systemd: a bookworm container booted with systemd-nspawn, with
// docker.service, and prepull (built statically) installed by install.sh.
// It pulls three paks under the full hardening: from a TLS registry with a
// private CA (installed into /etc/docker/certs.d) and a password file, from
// a registry whose login is in /root/.docker/config.json, and from one whose
// login a credential helper fetches over TCP, which fails with a hint until
// install.sh --network-logins lifts the unit's network isolation. Then
// reload, the watchdog on a stopped agent, kill -9, stop, and a
// configuration error that must not be restarted, each as systemd sees it,
// and systemd-analyze security.
func TestSystemdBooted(t *testing.T) {
	start := time.Now()
	root := testenv.Rootfs(t, testenv.RootBooted.Suite, testenv.RootBooted.Packages...)
	bin := e2e.StaticPrepull(t)
	platform := "linux/" + runtime.GOARCH

	ns := testenv.NewNetns(t)
	tf := e2e.NewTLSFiles(t, ns.Addr)
	tlsReg := testenv.StartRegistry(t, testenv.RegistryOptions{
		User: "alice", Password: "pw-" + e2e.RandomWord(t), TLSCert: tf.Cert, TLSKey: tf.Key, Netns: ns,
	})
	authsReg := testenv.StartRegistry(t, testenv.RegistryOptions{User: "bob", Password: "pw-" + e2e.RandomWord(t)})
	helperReg := testenv.StartRegistry(t, testenv.RegistryOptions{User: "carol", Password: "pw-" + e2e.RandomWord(t)})
	type image struct {
		reg  *testenv.Registry
		repo string
		pak  string
		ref  string
	}
	images := []*image{{reg: tlsReg, repo: "sd/tls"}, {reg: authsReg, repo: "sd/auths"}, {reg: helperReg, repo: "sd/helper"}}
	for _, im := range images {
		digest := testenv.PushPlatformImage(t, im.reg, im.repo, platform, "")
		im.ref = im.reg.Addr + "/" + im.repo + "@" + digest
		im.pak = paktest.Pak{Kind: "Sd" + strings.ReplaceAll(im.repo[3:], "/", ""), Registry: im.reg.Addr, Repository: "/" + im.repo, Digest: digest}.WriteFile(t, t.TempDir())
	}
	tlsImage, authsImage, helperImage := images[0], images[1], images[2]
	// The image that is being pulled when the service stops: its layer
	// download stalls on the way through a fault proxy.
	stallProxy := testenv.StartFaultProxy(t, authsReg.Addr)
	stallDigest := testenv.PushPlatformImage(t, authsReg, "sd/stall", platform, "")
	stallImage := &image{reg: authsReg, repo: "sd/stall", ref: stallProxy.Addr + "/sd/stall@" + stallDigest}
	stallImage.pak = paktest.Pak{Kind: "Sdstall", Registry: stallProxy.Addr, Repository: "/sd/stall", Digest: stallDigest}.WriteFile(t, t.TempDir())
	tokens := startTokenService(t, helperReg.Password)
	// An adapter .conf in a folder of conf_dirs, where VCF Operations keeps
	// them on its nodes: read under the unit's read-only file system.
	const confDir = "/usr/lib/vmware-vcops/user/plugins/inbound"
	confDigest := testenv.PushPlatformImage(t, authsReg, "sd/conf", platform, "")
	confRef := authsReg.Addr + "/sd/conf@" + confDigest
	confText := paktest.Pak{Kind: "Sdconf", Registry: authsReg.Addr, Repository: "/sd/conf", Digest: confDigest}.Conf()

	repo, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	m := testenv.Boot(t, root, nil)
	// The release folder install.sh runs from, with the static binary.
	for f, mode := range map[string]os.FileMode{"install.sh": 0o755, "systemd/prepull.service": 0o644, "systemd/network-logins.conf": 0o644, "configs/prepull.yaml": 0o644} {
		m.WriteFile(t, "/root/release/"+f, mode, readFile(t, filepath.Join(repo, f)))
	}
	m.WriteFile(t, "/root/release/prepull", 0o755, readFile(t, bin))
	m.WriteFile(t, confDir+"/Sdconf.conf", 0o644, string(confText))
	// The administrator's part: the configuration (kept by install.sh), a
	// password file, the registry's CA, Docker's config.json with a login
	// and a credential helper that asks a token service over TCP.
	m.WriteFile(t, "/etc/prepull/alice.password", 0o600, tlsReg.Password+"\n")
	m.WriteFile(t, "/etc/prepull/registry-ca.pem", 0o600, string(tf.CAPEM))
	m.WriteFile(t, "/etc/prepull/config.yaml", 0o600, fmt.Sprintf(`registries:
  - host: %s
    username: alice
    password_file: /etc/prepull/alice.password
    ca_file: /etc/prepull/registry-ca.pem
settle: 100ms
rescan_interval: 1s
conf_dirs: [%s]
`, tlsReg.Addr, confDir))
	if err := os.Chmod(m.Path("/etc/prepull"), 0o700); err != nil {
		t.Fatal(err)
	}
	auth := base64.StdEncoding.EncodeToString([]byte("bob:" + authsReg.Password))
	m.WriteFile(t, "/root/.docker/config.json", 0o600, fmt.Sprintf(`{"auths": {%q: {"auth": %q}, %q: {"auth": %q}}, "credHelpers": {%q: "e2etoken"}}`,
		authsReg.Addr, auth, stallProxy.Addr, auth, helperReg.Addr))
	m.WriteFile(t, "/usr/local/bin/docker-credential-e2etoken", 0o755, fmt.Sprintf(`#!/bin/bash
# A credential helper that fetches the password from a token service over
# TCP, as the AWS ECR helper does from AWS.
[ "$1" = get ] || exit 1
read -r server
exec 3<>/dev/tcp/127.0.0.1/%d || { echo "cannot reach the token service" >&2; exit 1; }
read -r secret <&3
printf '{"ServerURL": "%%s", "Username": "carol", "Secret": "%%s"}\n' "$server" "$secret"
`, tokens.port))
	// Short watchdog and restart delay, so that the test waits seconds,
	// not minutes; everything else is the unit as shipped.
	m.WriteFile(t, "/etc/systemd/system/prepull.service.d/e2e-timing.conf", 0o644,
		"[Service]\nWatchdogSec=3s\nRestartSec=1s\n")
	m.MustRun(t, "systemctl", "is-active", "docker")
	booted := time.Now()

	out := m.MustRun(t, "sh", "-c", "cd /root/release && ./install.sh --binary ./prepull 2>&1")
	if !strings.Contains(out, "kept your /etc/prepull/config.yaml") && !strings.Contains(out, "unchanged /etc/prepull/config.yaml") {
		t.Fatalf("install.sh did not keep the configuration:\n%s", out)
	}
	unit := func() map[string]string {
		t.Helper()
		props := map[string]string{}
		out := m.MustRun(t, "systemctl", "show", "prepull", "-p", "ActiveState,SubState,StatusText,MainPID,NRestarts,Result,ExecMainCode,ExecMainStatus")
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			k, v, _ := strings.Cut(line, "=")
			props[k] = v
		}
		return props
	}
	running := func(what string, cond func(map[string]string) bool) map[string]string {
		t.Helper()
		var props map[string]string
		e2e.WaitUntil(t, what, func() bool {
			props = unit()
			return props["ActiveState"] == "active" && props["SubState"] == "running" && cond(props)
		})
		return props
	}
	journal := func() string {
		return m.MustRun(t, "journalctl", "-u", "prepull", "-o", "cat", "--no-pager")
	}
	props := running("prepull is active with a status line", func(p map[string]string) bool {
		return strings.HasPrefix(p["StatusText"], "watching /var/lib/prepull/inbox")
	})
	t.Logf("active: %q", props["StatusText"])

	t.Run("exposure at most 1.0", func(t *testing.T) {
		out := m.MustRun(t, "systemd-analyze", "security", "prepull", "--no-pager")
		_, rest, ok := strings.Cut(out, "Overall exposure level for prepull.service: ")
		exposure, err := strconv.ParseFloat(strings.Fields(rest + " x")[0], 64)
		if !ok || err != nil {
			t.Fatalf("no overall exposure in systemd-analyze security:\n%s", out)
		}
		if exposure > 1.0 {
			t.Fatalf("exposure %.1f, want at most 1.0:\n%s", exposure, out)
		}
		t.Logf("exposure %.1f", exposure)
		// No core dumps, which would hold registry passwords.
		if got := strings.TrimSpace(m.MustRun(t, "systemctl", "show", "prepull", "-p", "LimitCORE", "--value")); got != "0" {
			t.Errorf("LimitCORE=%s, want 0", got)
		}
	})

	state := func() e2e.AgentState {
		t.Helper()
		var s e2e.AgentState
		data, err := os.ReadFile(m.Path("/var/lib/prepull/state.json"))
		if err == nil {
			err = json.Unmarshal(data, &s)
		}
		if err != nil && !os.IsNotExist(err) {
			t.Fatalf("state.json: %v", err)
		}
		return s
	}
	imageIs := func(ref string, cond func(status, lastError string) bool) func() bool {
		return func() bool {
			for _, im := range state().Images {
				if im.Reference == ref {
					return cond(im.Status, im.LastError)
				}
			}
			return false
		}
	}
	present := func(ref string) func() bool {
		return imageIs(ref, func(status, _ string) bool { return status == "present" })
	}
	for _, im := range images {
		m.WriteFile(t, "/var/lib/prepull/inbox/"+filepath.Base(im.pak), 0o600, readFile(t, im.pak))
	}

	t.Run("pulled under the full hardening", func(t *testing.T) {
		e2e.WaitUntil(t, "the TLS registry's image is present", present(tlsImage.ref))
		e2e.WaitUntil(t, "the image with the config.json login is present", present(authsImage.ref))
		for _, im := range []*image{tlsImage, authsImage} {
			m.MustRun(t, "docker", "image", "inspect", im.ref)
		}
		e2e.WaitUntil(t, "the image a conf in conf_dirs names is present", present(confRef))
		m.MustRun(t, "docker", "image", "inspect", confRef)
		ca := readFile(t, m.Path("/etc/docker/certs.d/"+tlsReg.Addr+"/ca.crt"))
		if ca != string(tf.CAPEM) {
			t.Fatalf("/etc/docker/certs.d/%s/ca.crt is not the registry's CA", tlsReg.Addr)
		}
	})

	t.Run("a helper that needs the network fails with a hint, then works with --network-logins", func(t *testing.T) {
		var lastError string
		e2e.WaitUntil(t, "the helper's failure is recorded", imageIs(helperImage.ref, func(_, e string) bool {
			lastError = e
			return e != ""
		}))
		for _, want := range []string{"docker-credential-e2etoken", "this process has no network (prepull.service sets PrivateNetwork=yes", "install.sh --network-logins"} {
			if !strings.Contains(lastError, want) {
				t.Errorf("the error does not say %q:\n%s", want, lastError)
			}
		}
		if n := tokens.count.Load(); n != 0 {
			t.Fatalf("the token service was reached %d times from the isolated service", n)
		}
		out := m.MustRun(t, "sh", "-c", "cd /root/release && ./install.sh --binary ./prepull --network-logins 2>&1")
		if !strings.Contains(out, "installed /etc/systemd/system/prepull.service.d/network-logins.conf") {
			t.Fatalf("install.sh --network-logins:\n%s", out)
		}
		e2e.WaitUntil(t, "the helper's image is present", present(helperImage.ref))
		m.MustRun(t, "docker", "image", "inspect", helperImage.ref)
		if tokens.count.Load() == 0 {
			t.Fatal("the image is present, but the helper never reached the token service")
		}
		// Back to the full hardening for the rest.
		out = m.MustRun(t, "sh", "-c", "cd /root/release && ./install.sh --binary ./prepull --no-network-logins 2>&1")
		if !strings.Contains(out, "removed /etc/systemd/system/prepull.service.d/network-logins.conf") {
			t.Fatalf("install.sh --no-network-logins:\n%s", out)
		}
		if got := m.MustRun(t, "systemctl", "show", "prepull", "-p", "PrivateNetwork", "--value"); strings.TrimSpace(got) != "yes" {
			t.Fatalf("PrivateNetwork=%s after --no-network-logins", got)
		}
	})

	t.Run("reload", func(t *testing.T) {
		if _, err := os.Stat(m.Path("/usr/bin/kill")); err == nil {
			t.Log("this root has a kill binary: the reload does not prove that none is needed")
		}
		before := strings.Count(journal(), "configuration reloaded")
		m.MustRun(t, "systemctl", "reload", "prepull")
		e2e.WaitUntil(t, "the agent logs the reload", func() bool {
			return strings.Count(journal(), "configuration reloaded") > before
		})
		running("prepull is running after the reload", func(map[string]string) bool { return true })
	})

	t.Run("a hung agent is killed by the watchdog and restarted", func(t *testing.T) {
		before := running("prepull is running", func(map[string]string) bool { return true })
		m.MustRun(t, "systemctl", "kill", "--kill-who=main", "--signal=SIGSTOP", "prepull")
		running("a new agent runs", func(p map[string]string) bool {
			return p["NRestarts"] != before["NRestarts"] && p["MainPID"] != before["MainPID"]
		})
		j := journal()
		for _, want := range []string{"Failed with result 'watchdog'", "status=6/ABRT"} {
			if !strings.Contains(j, want) {
				t.Errorf("the journal does not say %q", want)
			}
		}
	})

	t.Run("kill -9 restarts it", func(t *testing.T) {
		before := running("prepull is running", func(map[string]string) bool { return true })
		pid, err := strconv.Atoi(before["MainPID"])
		if err != nil || pid <= 1 {
			t.Fatalf("MainPID %q", before["MainPID"])
		}
		m.MustRun(t, "bash", "-c", `kill -9 "$1"`, "bash", strconv.Itoa(pid))
		running("a new agent runs", func(p map[string]string) bool {
			return p["NRestarts"] != before["NRestarts"] && p["MainPID"] != before["MainPID"]
		})
		if !strings.Contains(journal(), "status=9/KILL") {
			t.Error("the journal does not say status=9/KILL")
		}
		e2e.WaitUntil(t, "every image is still present", func() bool {
			return present(tlsImage.ref)() && present(authsImage.ref)() && present(helperImage.ref)()
		})
	})

	t.Run("stop within TimeoutStopSec, in the middle of a pull", func(t *testing.T) {
		stallProxy.StallBlobs(testenv.Stall{After: 0, MinSize: 1024})
		t.Cleanup(stallProxy.Heal)
		m.WriteFile(t, "/var/lib/prepull/inbox/"+filepath.Base(stallImage.pak), 0o600, readFile(t, stallImage.pak))
		e2e.WaitUntil(t, "the pull stalls", func() bool {
			return stallProxy.Stalls().Waiting > 0 && imageIs(stallImage.ref, func(status, _ string) bool { return status == "pulling" })()
		})
		began := time.Now()
		m.MustRun(t, "systemctl", "stop", "prepull")
		took := time.Since(began)
		p := unit()
		// Past TimeoutStopSec systemd would have killed it: Result would be
		// "timeout" and the exit a signal.
		if p["ActiveState"] != "inactive" || p["Result"] != "success" || p["ExecMainCode"] != "1" || p["ExecMainStatus"] != "0" {
			t.Fatalf("after stop: %v, want inactive, result success, exit status 0", p)
		}
		t.Logf("stopped in %v", took.Round(time.Millisecond))
	})
	t.Run("a configuration error is not restarted", func(t *testing.T) {
		m.WriteFile(t, "/etc/prepull/config.yaml", 0o600, "concurrency: many\n")
		// The start limit (5 in 10 minutes) is nearly used up by now.
		m.MustRun(t, "systemctl", "reset-failed", "prepull")
		before := unit()
		if _, err := m.Run(t, "systemctl", "start", "prepull"); err == nil {
			t.Fatal("systemctl start succeeded with a broken configuration")
		}
		// A restart would show as activating/auto-restart; without one the
		// unit stays failed.
		p := unit()
		if p["ActiveState"] != "failed" || p["SubState"] != "failed" || p["Result"] != "exit-code" || p["ExecMainStatus"] != "2" || p["NRestarts"] != before["NRestarts"] {
			t.Fatalf("after a start with a broken configuration: %v, want failed with exit status 2 and no restart", p)
		}
		if j := journal(); !strings.Contains(j, "/etc/prepull/config.yaml") {
			t.Errorf("the journal does not name the configuration file:\n%s", j[max(0, len(j)-2000):])
		}
	})
	t.Logf("run time %v (boot %v)", time.Since(start).Round(time.Second), booted.Sub(start).Round(time.Second))
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// tokenService hands its password to every TCP connection on 127.0.0.1,
// for a credential helper that must reach the network.
type tokenService struct {
	port  int
	count atomic.Int32
}

func startTokenService(t *testing.T, password string) *tokenService {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	s := &tokenService{port: l.Addr().(*net.TCPAddr).Port}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s.count.Add(1)
			fmt.Fprintln(c, password)
			c.Close()
		}
	}()
	return s
}
