//go:build linux

package windows

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	ggcrremote "github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/prepull/prepull/internal/e2e"
	"github.com/prepull/prepull/internal/pak/paktest"
	"github.com/prepull/prepull/internal/remote"
	"github.com/prepull/prepull/internal/testenv"
)

// workstation is one test's Windows workstation: prepull.exe under Wine,
// and a work folder on the host that prepull.exe sees as testenv.WineWork
// (Z:\w), where the test puts the files it names.
type workstation struct {
	t    *testing.T
	wine *testenv.Wine
	exe  string
	work string
}

func newWorkstation(t *testing.T) *workstation {
	t.Helper()
	return &workstation{t: t, wine: testenv.StartWine(t), exe: testenv.PrepullExe(t), work: t.TempDir()}
}

// path is the Windows path of rel (slash-separated) in the work folder.
func (w *workstation) path(rel string) string {
	return testenv.WineWork + `\` + strings.ReplaceAll(rel, "/", `\`)
}

// hostPath is the host's path of rel in the work folder.
func (w *workstation) hostPath(rel string) string {
	return filepath.Join(w.work, filepath.FromSlash(rel))
}

// put copies the host file src to rel in the work folder and returns its
// Windows path.
func (w *workstation) put(src, rel string) string {
	w.t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		w.t.Fatal(err)
	}
	w.write(rel, string(data))
	return w.path(rel)
}

// write writes content to rel in the work folder and returns its Windows
// path.
func (w *workstation) write(rel, content string) string {
	w.t.Helper()
	p := w.hostPath(rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		w.t.Fatal(err)
	}
	e2e.WriteTestFile(w.t, p, content)
	return w.path(rel)
}

// command is prepull.exe with args under Wine.
func (w *workstation) command(args ...string) *exec.Cmd {
	return w.wine.Command(w.work, w.exe, args...)
}

// run runs prepull.exe with args.
func (w *workstation) run(args ...string) e2e.Run {
	w.t.Helper()
	return e2e.RunCommand(w.t, w.command(args...), nil)
}

// inspected is one entry of prepull inspect --json, decoded loosely so
// that two binaries' outputs compare whole.
type inspected map[string]any

func decodeInspect(t *testing.T, r e2e.Run) []inspected {
	t.Helper()
	return e2e.Decode[[]inspected](t, r)
}

// TestWindowsInspectPaks reads paks with Windows paths (a drive letter,
// backslashes, a space, non-ASCII names, a .conf with CRLF endings) and
// says what the Linux binary says of the same paks, as a table and as JSON.
func TestWindowsInspectPaks(t *testing.T) {
	testenv.Require(t)
	w := newWorkstation(t)
	host := t.TempDir()
	paks := []paktest.Pak{
		{Kind: "MyAdapter", Version: "1.0.0", Registry: "harbor.example.com"},
		{Kind: "CafeAdapter", Name: "Café", Version: "2.0", Registry: "harbor.example.com:8443"},
		{Kind: "JpAdapter", Name: "監視アダプタ", Version: "1.0", Registry: "harbor.example.com", CRLF: true},
	}
	var winPaths, hostPaths []string
	for _, p := range paks {
		hp := p.WriteFile(t, host)
		hostPaths = append(hostPaths, hp)
		winPaths = append(winPaths, w.put(hp, "My Paks/"+filepath.Base(hp)))
	}
	notPak := w.write("My Paks/notes.pak", "not a zip")

	table := w.run(append([]string{"inspect"}, winPaths...)...)
	table.Want(t, 0)
	lines := strings.Split(strings.TrimRight(table.Stdout, "\n"), "\n")
	if got := strings.Join(strings.Fields(lines[0]), " "); got != "FILE ADAPTER KIND REFERENCE REGISTRY FROM" || len(lines) != len(paks)+1 {
		t.Fatalf("table:\n%s\nstderr:\n%s", table.Stdout, table.Stderr)
	}
	for i, p := range paks {
		// The file as the user named it, space included, then the columns.
		rest, ok := strings.CutPrefix(lines[i+1], winPaths[i]+" ")
		want := []string{p.Kind, p.Reference(""), "pak"}
		if got := strings.Fields(rest); !ok || strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("row %d = %q, want %s then %q", i, lines[i+1], winPaths[i], want)
		}
	}

	// JSON: the Linux binary's answer for the same paks, file names aside;
	// a file that is no pak fails alike, named as the user wrote it.
	winRun := w.run(append([]string{"inspect", "--json"}, append(winPaths, notPak)...)...)
	winRun.Want(t, 3)
	cmd := exec.Command(testenv.Prepull(t), append([]string{"inspect", "--json"}, append(hostPaths, w.hostPath("My Paks/notes.pak"))...)...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + host}
	linuxRun := e2e.RunCommand(t, cmd, nil)
	linuxRun.Want(t, 3)
	got, want := decodeInspect(t, winRun), decodeInspect(t, linuxRun)
	if len(got) != len(paks)+1 || len(want) != len(got) {
		t.Fatalf("%d results from prepull.exe, %d from Linux, want %d:\n%s", len(got), len(want), len(paks)+1, winRun.Stdout)
	}
	for i := range got {
		winFile := append(winPaths, notPak)[i]
		if got[i]["file"] != winFile {
			t.Errorf("result %d names file %v, want %s", i, got[i]["file"], winFile)
		}
		if e, ok := got[i]["error"].(string); ok {
			if !strings.Contains(e, winFile) {
				t.Errorf("result %d error %q does not name %s", i, e, winFile)
			}
			want[i]["error"] = strings.ReplaceAll(want[i]["error"].(string), want[i]["file"].(string), winFile)
		}
		got[i]["file"], want[i]["file"] = "", ""
		g, _ := json.Marshal(got[i])
		l, _ := json.Marshal(want[i])
		if string(g) != string(l) {
			t.Errorf("result %d:\nprepull.exe %s\nLinux       %s", i, g, l)
		}
	}
}

// remoteArgs are the arguments of a prepull.exe remote run on the proxies
// hosts of fleet p with the key and known_hosts copied to the workstation,
// then extra.
func remoteArgs(t *testing.T, w *workstation, p *e2e.ProxyFleet, hosts []int, extra ...string) []string {
	args := []string{"remote", "-i", w.put(p.Key.Path, ".ssh/id_ed25519"), "--known-hosts", w.path(".ssh/known_hosts"),
		"--remote-command", p.RemoteCommand(t), "--connect-timeout", "60s"}
	for _, i := range hosts {
		args = append(args, "-H", p.Dest(i))
	}
	return append(args, extra...)
}

// TestWindowsRemote drives a fleet of two proxies (real OpenSSH servers)
// from prepull.exe with an identity file and a strict known_hosts: one
// host pulls, two hosts agree, and an unknown host key is refused.
func TestWindowsRemote(t *testing.T) {
	f := e2e.NewFixture(t, "windows/remote")
	w := newWorkstation(t)
	p := e2e.NewProxyFleet(t, f, f.Config, f.Config)
	w.put(p.KnownHosts, ".ssh/known_hosts")
	pak := w.put(f.Pak, "My Paks/"+filepath.Base(f.Pak))

	t.Run("one host pulls", func(t *testing.T) {
		r := f.RunCommand(w.command(remoteArgs(t, w, p, []int{0}, "--json", pak)...))
		r.Want(t, 0)
		rows := r.RemoteResults(t)
		row, ok := rows[p.Dest(0)+" "+pak]
		if len(rows) != 1 || !ok || row.Status != "pulled" || row.Reference != f.Ref || row.ExitCode != 0 || row.Error != "" {
			t.Fatalf("rows %+v, want %s pulled %s\nstderr:\n%s", rows, p.Dest(0), f.Ref, r.Stderr)
		}
		if !f.Docker.HasImage(t, f.Ref) {
			t.Fatalf("the proxy's engine does not hold %s", f.Ref)
		}
	})

	t.Run("two hosts", func(t *testing.T) {
		r := f.RunCommand(w.command(remoteArgs(t, w, p, []int{0, 1}, "--wide", pak)...))
		r.Want(t, 0)
		rows := r.TableRows(t)
		if len(rows) != 2 {
			t.Fatalf("%d table rows, want 2:\n%s", len(rows), r.Stdout)
		}
		for i, row := range rows {
			// The pak's path holds a space: the row is read whole.
			line := strings.Join(row, " ")
			want := strings.Join([]string{p.Dest(i), pak, f.Ref, "present"}, " ")
			if !strings.HasPrefix(line, want+" ") || !strings.HasSuffix(line, " -") {
				t.Errorf("row %d = %q, want %s ... -", i, line, want)
			}
		}
		if !strings.HasSuffix(r.Stdout, "\n2/2 hosts ok\n") {
			t.Errorf("stdout does not end with the summary 2/2 hosts ok:\n%s", r.Stdout)
		}
	})

	t.Run("unknown host key refused", func(t *testing.T) {
		empty := w.write(".ssh/known_hosts_empty", "")
		args := remoteArgs(t, w, p, []int{0}, "--json", pak)
		args[4] = empty // --known-hosts
		r := f.RunCommand(w.command(args...))
		r.Want(t, 1)
		row := r.RemoteResults(t)[p.Dest(0)+" "+pak]
		prefix := fmt.Sprintf("host [127.0.0.1]:%d is unknown (ED25519 key SHA256:", p.Proxies[0].Port())
		suffix := "); run with --accept-new to trust it, or add it to " + empty
		if row.Status != "failed" || !strings.HasPrefix(row.Error, prefix) || !strings.HasSuffix(row.Error, suffix) {
			t.Fatalf("row %+v\nwant error %q...%q", row, prefix, suffix)
		}
		if data, err := os.ReadFile(w.hostPath(".ssh/known_hosts_empty")); err != nil || len(data) != 0 {
			t.Errorf("known_hosts after a refusal: %q, %v; want it empty", data, err)
		}
	})
}

// TestWindowsMirror copies the fixture's image from its registry to a
// second one with a login of its own, from prepull.exe with a
// configuration written as a Windows user writes it, and writes the
// rewritten pak to a Windows --out folder.
func TestWindowsMirror(t *testing.T) {
	f := e2e.NewFixture(t, "windows/mirror")
	w := newWorkstation(t)
	mirrorPW := "mirror-" + e2e.RandomWord(t)
	mreg := testenv.StartRegistry(t, testenv.RegistryOptions{User: "bob", Password: mirrorPW})
	srcPW := w.put(f.PasswordFile(), "secrets/source.password")
	dstPW := w.write("secrets/mirror.password", mirrorPW+"\n")
	// Plain and single-quoted YAML keep backslashes as written.
	cfg := w.write("prepull/config.yaml", fmt.Sprintf("registries:\n  - host: %s\n    username: alice\n    password_file: %s\n  - {host: %q, username: bob, password_file: '%s'}\n",
		f.Reg.Addr, srcPW, mreg.Addr, dstPW))
	pak := w.put(f.Pak, "My Paks/"+filepath.Base(f.Pak))
	if err := os.Mkdir(w.hostPath("For the proxy"), 0o755); err != nil {
		t.Fatal(err)
	}
	wantRef := mreg.Addr + "/dc1/windows/mirror@" + f.Digest

	r := f.RunCommand(w.command("--config", cfg, "--json", "mirror", "--to", mreg.Addr+"/dc1", "--out", w.path("For the proxy"), pak))
	r.Want(t, 0)
	if strings.Contains(r.Stdout+r.Stderr, mirrorPW) {
		t.Fatal("the mirror's password appears in the output")
	}
	rs := r.MirrorResults(t)
	if len(rs) != 1 || rs[0].Status != "mirrored" || rs[0].Reference != wantRef || rs[0].File != pak {
		t.Fatalf("results = %+v, want %s mirrored as %s\nstderr:\n%s", rs, pak, wantRef, r.Stderr)
	}
	ref, err := name.NewDigest(wantRef)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := ggcrremote.Head(ref, ggcrremote.WithAuth(&authn.Basic{Username: "bob", Password: mirrorPW}))
	if err != nil || desc.Digest.String() != f.Digest {
		t.Fatalf("the mirror serves %v for %s: %v", desc, wantRef, err)
	}

	// The rewritten pak, in the --out folder, names the mirror.
	rewritten := w.path("For the proxy/" + filepath.Base(f.Pak))
	if rs[0].Out != rewritten {
		t.Errorf("out = %q, want %q", rs[0].Out, rewritten)
	}
	ins := w.run("inspect", "--json", rewritten)
	ins.Want(t, 0)
	if got := decodeInspect(t, ins); len(got) != 1 || got[0]["reference"] != wantRef {
		t.Fatalf("inspect of the rewritten pak:\n%s\nstderr:\n%s", ins.Stdout, ins.Stderr)
	}
}

// TestWindowsRemoteNamedPipeAgent logs in with the key of an ssh-agent
// served on Windows' OpenSSH agent pipe (\\.\pipe\openssh-ssh-agent) by a
// test agent built for Windows, with no SSH_AUTH_SOCK and no -i: the
// transport prepull.exe picks on its own.
func TestWindowsRemoteNamedPipeAgent(t *testing.T) {
	f := e2e.NewFixture(t, "windows/agent")
	w := newWorkstation(t)
	p := e2e.NewProxyFleet(t, f, f.Config)
	agentExe := testenv.WindowsExe(t, "./internal/e2e/windows/pipeagent")
	key := w.put(p.Key.Path, "agent/id_ed25519")
	pak := w.put(f.Pak, "My Paks/"+filepath.Base(f.Pak))
	args := []string{remote.WindowsAgentPipe, key, "--", `Z:\x\` + filepath.Base(testenv.PrepullExe(t)),
		"remote", "--known-hosts", w.put(p.KnownHosts, ".ssh/known_hosts"), "--remote-command", p.RemoteCommand(t),
		"--connect-timeout", "60s", "--json", "-H", p.Dest(0), pak}

	r := f.RunCommand(w.wine.Command(w.work, agentExe, args...))
	r.Want(t, 0)
	row, ok := r.RemoteResults(t)[p.Dest(0)+" "+pak]
	if !ok || row.Status != "pulled" || row.Reference != f.Ref {
		t.Fatalf("row %+v, want pulled %s\nstderr:\n%s", row, f.Ref, r.Stderr)
	}
	if !strings.Contains(r.Stderr, "pipeagent: 1 signatures\n") {
		t.Errorf("the agent on the pipe did not sign the login:\n%s", r.Stderr)
	}
}
