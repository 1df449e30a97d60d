//go:build linux

package ansible

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prepull/prepull/internal/e2e"
	"github.com/prepull/prepull/internal/pak/paktest"
	"github.com/prepull/prepull/internal/testenv"
)

// playbookTimeout bounds one run of ansible-playbook or ansible-lint.
const playbookTimeout = 10 * time.Minute

// TestAnsibleRole runs the role with ansible-core and ansible-lint from
// Debian, in a root of their own, against two Cloud Proxies: booted
// bookworm containers, each with its own Docker Engine and an OpenSSH server
// on its own loopback port, reached with a key and strict host keys. The
// first run installs, starts the agent and ends with the image present in
// each engine; the second changes nothing; --check --diff shows a change and
// makes none; a wrong registry password fails both hosts with the agent's
// reason, the password nowhere in the -vvv output; with one proxy stopped,
// only that host fails. ansible-lint --offline passes on the role.
func TestAnsibleRole(t *testing.T) {
	repo, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	controller := testenv.Rootfs(t, testenv.RootAnsible.Suite, testenv.RootAnsible.Packages...)

	t.Run("ansible-lint", func(t *testing.T) {
		out, err := runController(t, controller, t.TempDir(), repo, "/repo/ansible", "ansible-lint", "--offline", "roles/prepull")
		if err != nil {
			t.Fatalf("ansible-lint --offline: %v\n%s", err, out)
		}
	})

	proxyRoot := testenv.Rootfs(t, testenv.RootProxy.Suite, testenv.RootProxy.Packages...)
	platform := "linux/" + runtime.GOARCH
	password := "pw-" + e2e.RandomWord(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{User: "fleet", Password: password})
	var paks, refs []string
	for _, name := range []string{"first", "second"} {
		digest := testenv.PushPlatformImage(t, reg, "fleet/"+name, platform, "")
		refs = append(refs, reg.Addr+"/fleet/"+name+"@"+digest)
		// A big pak: only its .conf and manifest travel.
		p := paktest.Pak{Kind: "Fleet" + name, Registry: reg.Addr, Repository: "/fleet/" + name, Digest: digest, ContentBytes: 8 << 20}
		paks = append(paks, p.WriteFile(t, t.TempDir()))
	}

	key := testenv.NewSSHKey(t, "")
	proxies := []*proxy{bootProxy(t, proxyRoot, key, "proxy-a"), bootProxy(t, proxyRoot, key, "proxy-b")}
	work := t.TempDir()
	bin := e2e.StaticPrepull(t)
	writeControllerFiles(t, work, key, proxies, reg.Addr, bin, paks)
	writeRelease(t, filepath.Join(work, "release"), repo, bin, "")
	writeRelease(t, filepath.Join(work, "bad-release"), repo, bin, strings.Repeat("0", 64))
	play := func(t *testing.T, vars string, args ...string) (string, map[string]recap) {
		t.Helper()
		writeFile(t, filepath.Join(work, "run.yml"), vars)
		argv := append([]string{"ansible-playbook", "-i", "inventory.ini", "-e", "@run.yml"}, append(args, "site.yml")...)
		out, _ := runController(t, controller, work, repo, "/w", argv...)
		if err := os.WriteFile(filepath.Join(work, "last-run.log"), []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
		return out, readRecap(t, out)
	}
	paksVar := func(n int) string {
		var list []string
		for _, p := range paks[:n] {
			list = append(list, "/w/paks/"+filepath.Base(p))
		}
		return "paks: [" + strings.Join(list, ", ") + "]\n"
	}
	good := fmt.Sprintf("registry_password: %q\nbinary: /w/prepull\n", password) + paksVar(1)
	both := fmt.Sprintf("registry_password: %q\nbinary: /w/prepull\n", password) + paksVar(2)

	t.Run("bad input fails before any change", func(t *testing.T) {
		// Extra variables take precedence over the playbook's.
		bad := good + `prepull_registries:
  - {host: two.example, username: u, password: secret, password_file: /etc/pw}
  - {host: none.example, username: u}
prepull_log_format: loud
`
		out, rc := play(t, bad)
		for _, p := range proxies {
			if r := rc[p.name]; r.failed == 0 || r.changed != 0 {
				t.Errorf("%s: %+v, want failed with nothing changed\n%s", p.name, r, out)
			}
		}
		if !strings.Contains(out, "log_format") || !strings.Contains(out, "loud") {
			t.Errorf("the argument spec did not refuse log_format loud:\n%s", lastLines(out, 40))
		}
		out, _ = play(t, strings.TrimSuffix(bad, "prepull_log_format: loud\n"))
		for _, want := range []string{"two.example gives password and password_file: one of them", "none.example gives none of password,"} {
			if strings.Count(out, want) != 2 {
				t.Errorf("want %q for both hosts:\n%s", want, lastLines(out, 40))
			}
		}
	})

	t.Run("a release that does not match its SHA256SUMS fails before any change", func(t *testing.T) {
		out, rc := play(t, strings.Replace(good, "binary: /w/prepull", "release: /w/bad-release", 1))
		for _, p := range proxies {
			if r := rc[p.name]; r.failed == 0 || r.changed != 0 {
				t.Errorf("%s: %+v, want failed with nothing changed\n%s", p.name, r, out)
			}
			if _, err := os.Lstat(p.b.Path("/usr/local/bin/prepull")); err == nil {
				t.Errorf("%s: prepull was installed", p.name)
			}
		}
		if n := strings.Count(out, "is not the prepull that /w/bad-release/SHA256SUMS lists"); n != 2 {
			t.Errorf("the reason shows %d times, want 2:\n%s", n, lastLines(out, 40))
		}
	})

	t.Run("check and diff on a fresh proxy change nothing", func(t *testing.T) {
		out, rc := play(t, good, "--check", "--diff")
		for _, p := range proxies {
			if r := rc[p.name]; r.failed != 0 || r.unreachable != 0 || r.changed == 0 {
				t.Errorf("%s: %+v, want changes shown and none failed\n%s", p.name, r, lastLines(out, 60))
			}
			for _, path := range []string{"/usr/local/bin/prepull", "/etc/prepull", "/etc/systemd/system/prepull.service"} {
				if _, err := os.Lstat(p.b.Path(path)); err == nil {
					t.Errorf("%s: --check made %s", p.name, path)
				}
			}
		}
	})

	t.Run("first run installs from a release and the image is present", func(t *testing.T) {
		out, rc := play(t, strings.Replace(good, "binary: /w/prepull", "release: /w/release", 1))
		for _, p := range proxies {
			if r := rc[p.name]; r.failed != 0 || r.unreachable != 0 || r.changed == 0 {
				t.Fatalf("%s: %+v\n%s", p.name, r, out)
			}
			p.b.MustRun(t, "systemctl", "is-active", "prepull")
			p.b.MustRun(t, "docker", "image", "inspect", "--format", "{{.Id}}", refs[0])
			if strings.Contains(p.read(t, "/etc/prepull/config.yaml"), password) {
				t.Errorf("%s: config.yaml holds the password", p.name)
			}
			if st, err := os.Stat(p.b.Path("/etc/prepull/" + strings.ReplaceAll(reg.Addr, ":", "_") + ".password")); err != nil || st.Mode().Perm() != 0o600 {
				t.Errorf("%s: the password file: %v, %v", p.name, st, err)
			}
		}
	})

	t.Run("second run changes nothing", func(t *testing.T) {
		out, rc := play(t, good)
		for _, p := range proxies {
			if r := rc[p.name]; r.failed != 0 || r.changed != 0 || r.ok == 0 {
				t.Errorf("%s: %+v, want changed=0\n%s", p.name, r, out)
			}
		}
	})

	t.Run("check and diff change nothing", func(t *testing.T) {
		before := proxies[0].read(t, "/etc/prepull/config.yaml")
		out, rc := play(t, good+"settle: 300ms\n", "--check", "--diff")
		for _, p := range proxies {
			if r := rc[p.name]; r.failed != 0 || r.changed == 0 {
				t.Errorf("%s: %+v, want a change shown\n%s", p.name, r, out)
			}
		}
		if !strings.Contains(out, `+settle: "300ms"`) {
			t.Errorf("the diff does not show the new settle:\n%s", out)
		}
		if after := proxies[0].read(t, "/etc/prepull/config.yaml"); after != before {
			t.Errorf("--check changed the configuration:\n%s", after)
		}
	})

	t.Run("a change reloads, a restart key restarts", func(t *testing.T) {
		mainPID := func(p *proxy) string {
			return strings.TrimSpace(p.b.MustRun(t, "systemctl", "show", "--property=MainPID", "--value", "prepull.service"))
		}
		pids := map[string]string{}
		for _, p := range proxies {
			pids[p.name] = mainPID(p)
		}
		out, rc := play(t, good+"settle: 300ms\n")
		for _, p := range proxies {
			if r := rc[p.name]; r.failed != 0 || r.changed == 0 {
				t.Errorf("%s: %+v, want a change\n%s", p.name, r, lastLines(out, 40))
			}
			if pid := mainPID(p); pid != pids[p.name] {
				t.Errorf("%s: settle changed and the agent restarted (pid %s, was %s), want a reload", p.name, pid, pids[p.name])
			}
			p.b.MustRun(t, "journalctl", "--no-pager", "-u", "prepull.service", "--grep", "Reload")
		}
		out, rc = play(t, good+"settle: 300ms\nprepull_log_format: json\n")
		for _, p := range proxies {
			if r := rc[p.name]; r.failed != 0 || r.changed == 0 {
				t.Errorf("%s: %+v, want a change\n%s", p.name, r, lastLines(out, 40))
			}
			if pid := mainPID(p); pid == pids[p.name] {
				t.Errorf("%s: log_format changed and the agent kept running (pid %s), want a restart", p.name, pid)
			}
		}
	})

	t.Run("a wrong password fails both hosts and shows nowhere", func(t *testing.T) {
		wrong := "wrong-" + e2e.RandomWord(t)
		out, rc := play(t, strings.Replace(both, password, wrong, 1), "-vvv")
		for _, p := range proxies {
			if r := rc[p.name]; r.failed == 0 {
				t.Errorf("%s: %+v, want failed\n%s", p.name, r, out)
			}
		}
		// At -vvv the result is indented JSON over several lines.
		fatal := regexp.MustCompile(`(?s)fatal: \[(proxy-[ab])\]: FAILED! => \{.*?"msg": "((?:[^"\\]|\\.)*)"`)
		failed := map[string]string{}
		for _, m := range fatal.FindAllStringSubmatch(out, -1) {
			failed[m[1]] = m[2]
		}
		reason := regexp.MustCompile(regexp.QuoteMeta(filepath.Base(paks[1])) +
			`: the agent failed it: .*(credentials rejected|rejected the credentials).*\(prepull keep exit code 4\b`)
		t.Logf("%s failed with: %s", proxies[0].name, failed[proxies[0].name])
		for _, p := range proxies {
			if !reason.MatchString(failed[p.name]) {
				t.Errorf("%s: failed with %q, want the agent's reason and exit code 4\n%s", p.name, failed[p.name], lastLines(out, 60))
			}
		}
		leaks := e2e.LeakFinder{Forms: append(e2e.SecretForms(wrong), e2e.SecretForms(password)...)}
		leaks.Check("ansible-playbook -vvv output", []byte(out))
		for _, p := range proxies {
			leaks.Check(p.name+" config.yaml", []byte(p.read(t, "/etc/prepull/config.yaml")))
		}
		if found := leaks.Found(); len(found) > 0 {
			t.Errorf("%s", strings.Join(found, "\n"))
		}
	})

	t.Run("one proxy stopped fails alone", func(t *testing.T) {
		proxies[1].b.MustRun(t, "systemctl", "stop", "ssh.service")
		out, rc := play(t, both)
		if r := rc[proxies[0].name]; r.failed != 0 || r.unreachable != 0 {
			t.Errorf("%s: %+v, want it to complete\n%s", proxies[0].name, r, out)
		}
		if r := rc[proxies[1].name]; r.unreachable == 0 {
			t.Errorf("%s: %+v, want it unreachable\n%s", proxies[1].name, r, out)
		}
		for _, ref := range refs {
			proxies[0].b.MustRun(t, "docker", "image", "inspect", "--format", "{{.Id}}", ref)
		}
	})
}

// proxy is a booted Cloud Proxy with its own Docker Engine and sshd.
type proxy struct {
	name    string
	port    int
	hostKey string // its public host key, an authorized_keys line
	b       *testenv.Booted
}

// bootProxy boots root with an sshd on a free loopback port of its own, a
// host key of its own, and key allowed to log in as root, and waits until
// sshd and Docker Engine are active.
func bootProxy(t *testing.T, root string, key testenv.SSHKey, name string) *proxy {
	t.Helper()
	p := &proxy{name: name, port: testenv.FreePort(t)}
	hostKey := testenv.NewSSHKey(t, "")
	p.hostKey = hostKey.Public
	priv, err := os.ReadFile(hostKey.Path)
	if err != nil {
		t.Fatal(err)
	}
	p.b = testenv.Boot(t, root, func(dir string) {
		write := func(path string, mode os.FileMode, data string) {
			path = filepath.Join(dir, path)
			if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(data), mode); err != nil {
				t.Fatal(err)
			}
		}
		// Its own port and host key: the cached root's were made once by
		// debootstrap, for every container.
		write("etc/ssh/sshd_config.d/proxy.conf", 0o644, fmt.Sprintf("Port %d\nListenAddress 127.0.0.1\nHostKey /etc/ssh/proxy_host_key\n"+
			"PermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n", p.port))
		write("etc/ssh/proxy_host_key", 0o600, string(priv))
		write("root/.ssh/authorized_keys", 0o600, key.Public+"\n")
	})
	// Boot returns once systemd reports the system running, so both
	// services, of Type=notify, are ready or have failed.
	p.b.MustRun(t, "systemctl", "is-active", "ssh.service", "docker.service")
	return p
}

// read returns a file of the proxy.
func (p *proxy) read(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(p.b.Path(path))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// writeControllerFiles writes what the controller's /w holds: the
// inventory, known_hosts, the key, ansible.cfg, the playbook, the binary and
// the paks.
func writeControllerFiles(t *testing.T, work string, key testenv.SSHKey, proxies []*proxy, registry, bin string, paks []string) {
	t.Helper()
	var inventory, knownHosts strings.Builder
	inventory.WriteString("[proxies]\n")
	for _, p := range proxies {
		fmt.Fprintf(&inventory, "%s ansible_host=127.0.0.1 ansible_port=%d ansible_user=root\n", p.name, p.port)
		fmt.Fprintf(&knownHosts, "[127.0.0.1]:%d %s\n", p.port, p.hostKey)
	}
	writeFile(t, filepath.Join(work, "inventory.ini"), inventory.String())
	writeFile(t, filepath.Join(work, "known_hosts"), knownHosts.String())
	copyFile(t, key.Path, filepath.Join(work, "id_ed25519"), 0o600)
	writeFile(t, filepath.Join(work, "ansible.cfg"), `[defaults]
roles_path = /repo/ansible/roles
interpreter_python = /usr/bin/python3
private_key_file = /w/id_ed25519
host_key_checking = True
retry_files_enabled = False
forks = 5

[ssh_connection]
pipelining = True
ssh_args = -o UserKnownHostsFile=/w/known_hosts -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes -o ControlMaster=auto -o ControlPersist=60s
`)
	// The playbook an administrator writes (docs/ansible.md shows it).
	writeFile(t, filepath.Join(work, "site.yml"), `- name: Cloud Proxies keep their adapters' images present
  hosts: proxies
  gather_facts: false
  roles:
    - role: prepull
      vars:
        prepull_binary: "{{ binary | default('') }}"
        prepull_release_dir: "{{ release | default('') }}"
        prepull_registries:
          - host: "`+registry+`"
            username: fleet
            password: "{{ registry_password }}"
        prepull_paks: "{{ paks }}"
        prepull_config:
          settle: "{{ settle | default('100ms') }}"
          rescan_interval: 1s
        prepull_keep_timeout: 2m
`)
	if err := os.MkdirAll(filepath.Join(work, "paks"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range paks {
		copyFile(t, p, filepath.Join(work, "paks", filepath.Base(p)), 0o644)
	}
	copyFile(t, bin, filepath.Join(work, "prepull"), 0o755)
}

// writeRelease lays out an unpacked release in dir: the binary, the unit,
// the drop-in, the example configuration, install.sh and SHA256SUMS, which
// lists sum for the binary (its true SHA-256 when empty).
func writeRelease(t *testing.T, dir, repo, bin, sum string) {
	t.Helper()
	for _, d := range []string{"systemd", "configs"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"install.sh", "systemd/prepull.service", "systemd/network-logins.conf", "configs/prepull.yaml"} {
		copyFile(t, filepath.Join(repo, f), filepath.Join(dir, f), 0o644)
	}
	copyFile(t, bin, filepath.Join(dir, "prepull"), 0o755)
	if sum == "" {
		data, err := os.ReadFile(bin)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.Sum256(data)
		sum = hex.EncodeToString(h[:])
	}
	writeFile(t, filepath.Join(dir, "SHA256SUMS"), sum+"  prepull\n")
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, src, dst string, mode os.FileMode) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err == nil {
		err = os.WriteFile(dst, data, mode)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// runController runs argv in the controller root, in dir, with work as /w
// and the repository read-only as /repo: systemd-nspawn sharing the host's
// network, on a volatile overlay that leaves the cached root untouched. It
// returns the output, stdout and stderr together.
func runController(t *testing.T, root, work, repo, dir string, argv ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), playbookTimeout)
	defer cancel()
	nspawn, err := exec.LookPath("systemd-nspawn")
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"-q", "--register=no", "--keep-unit", "--console=pipe", "--as-pid2", "--volatile=overlay",
		fmt.Sprintf("--machine=ansible-%d-%d", os.Getpid(), time.Now().UnixNano()%1e9),
		"-D", root, "--bind=" + work + ":/w", "--bind-ro=" + repo + ":/repo", "--chdir=" + dir,
		"--setenv=ANSIBLE_CONFIG=/w/ansible.cfg", "--setenv=ANSIBLE_NOCOLOR=1", "--setenv=HOME=/root",
		"--setenv=LANG=C.UTF-8", "--setenv=NO_COLOR=1", "--setenv=TERM=dumb", "--setenv=PYTHONUNBUFFERED=1"}
	cmd := exec.CommandContext(ctx, nspawn, append(args, argv...)...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("%s: %w", strings.Join(argv, " "), ctx.Err())
	}
	return string(out), err
}

// recap is one host's line of PLAY RECAP.
type recap struct{ ok, changed, unreachable, failed int }

var recapLine = regexp.MustCompile(`(?m)^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)`)

// readRecap reads the PLAY RECAP of ansible-playbook's output.
func readRecap(t *testing.T, out string) map[string]recap {
	t.Helper()
	_, tail, ok := strings.Cut(out, "PLAY RECAP")
	if !ok {
		t.Fatalf("no PLAY RECAP in the output:\n%s", lastLines(out, 80))
	}
	rc := map[string]recap{}
	for _, m := range recapLine.FindAllStringSubmatch(tail, -1) {
		n := func(i int) int { v, _ := strconv.Atoi(m[i]); return v }
		rc[m[1]] = recap{ok: n(2), changed: n(3), unreachable: n(4), failed: n(5)}
	}
	return rc
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
