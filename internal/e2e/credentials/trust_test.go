//go:build linux

package credentials

import (
	"encoding/base64"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/prepull/prepull/internal/e2e"
	"github.com/prepull/prepull/internal/pak/paktest"
	"github.com/prepull/prepull/internal/testenv"
)

// authLogger is a hostile registry: the attacker. It asks every client for
// a Basic login and records every Authorization header it is sent, decoded
// where it can be, so that a test can tell whether a secret reached it.
type authLogger struct {
	addr string

	mu       sync.Mutex
	requests int
	headers  []string // raw Authorization headers, then their decoded Basic forms
}

func startAuthLogger(t *testing.T) *authLogger {
	t.Helper()
	a := &authLogger{}
	a.addr = e2e.ServeAttacker(t, func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		a.requests++
		if h := r.Header.Get("Authorization"); h != "" {
			a.headers = append(a.headers, h)
			if b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(h, "Basic ")); err == nil {
				a.headers = append(a.headers, string(b))
			}
		}
		a.mu.Unlock()
		w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
		w.Header().Set("WWW-Authenticate", `Basic realm="attacker"`)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`))
	})
	return a
}

// seen returns how many requests arrived and every Authorization header.
func (a *authLogger) seen() (int, []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.requests, append([]string(nil), a.headers...)
}

// TestFlagLoginGoesToItsRegistryOnly runs the one-shot with a command-line
// login for the test's registry and a pak naming a hostile registry that
// logs Authorization headers: the pak for the right registry pulls with the
// login, the hostile registry is asked anonymously and never receives the
// password, with or without --dry-run. --username without --registry is a
// usage error that contacts nothing. A decoy login meant for the hostile
// registry shows that it does record what it is sent.
func TestFlagLoginGoesToItsRegistryOnly(t *testing.T) {
	f := e2e.NewFixture(t, "proj/flaglogin")
	cfgNone := f.WriteConfig("registries: []\n")
	evil := startAuthLogger(t)
	evilPak := paktest.Pak{Kind: "Evil", Registry: evil.addr, Repository: "/proj/evil", Digest: f.Digest}.WriteFile(t, t.TempDir())
	leaks := &e2e.LeakFinder{Forms: e2e.SecretForms(f.Password)}
	login := func(host string) []string {
		return []string{"--config", cfgNone, "--registry", host, "--username", "alice", "--password-stdin", "--json"}
	}

	r := f.Prepull(strings.NewReader(f.Password+"\n"), append(login(f.Reg.Addr), evilPak, f.Pak)...)
	r.Want(t, 4)
	rs := r.Results(t)
	if len(rs) != 2 || rs[0].Status != "failed" || rs[0].CredentialSource != "anonymous" || rs[0].ExitCode != 4 {
		t.Fatalf("results = %+v, want the hostile registry's pak failed anonymously (4)", rs)
	}
	if rs[1].Status != "pulled" || !strings.HasPrefix(rs[1].CredentialSource, "command line (--registry "+f.Reg.Addr) {
		t.Fatalf("results = %+v, want the registry's own pak pulled with the command line's login", rs)
	}

	r = f.Prepull(strings.NewReader(f.Password+"\n"), append(login(f.Reg.Addr), "--dry-run", "--force", evilPak, f.Pak)...)
	if rs := r.Results(t); len(rs) != 2 || rs[0].CredentialSource != "anonymous" {
		t.Fatalf("--dry-run results = %+v, want the hostile registry's pak anonymous", rs)
	}

	n, headers := evil.seen()
	if n == 0 {
		t.Fatal("the hostile registry was never asked: the test proves nothing")
	}
	for _, h := range headers {
		leaks.Check("the hostile registry's Authorization log", []byte(h))
	}
	if l := leaks.Found(); len(l) > 0 {
		t.Fatalf("the command line's password reached another registry: %v", l)
	}

	// Without --registry: refused before anything is contacted.
	before, _ := evil.seen()
	r = f.Prepull(strings.NewReader(f.Password+"\n"), "--config", cfgNone, "--username", "alice", "--password-stdin", evilPak)
	r.Want(t, 2)
	if !strings.Contains(r.Stderr, "--username needs --registry") {
		t.Errorf("stderr should say --registry is needed:\n%s", r.Stderr)
	}
	if after, _ := evil.seen(); after != before {
		t.Errorf("a refused command line still contacted the hostile registry (%d requests)", after-before)
	}

	// The control: a login meant for the hostile registry does reach it.
	decoy := "decoy-" + e2e.RandomWord(t)
	f.Prepull(strings.NewReader(decoy+"\n"), append(login(evil.addr), evilPak)...)
	_, headers = evil.seen()
	if !strings.Contains(strings.Join(headers, "\n"), "alice:"+decoy) {
		t.Fatalf("the hostile registry did not record a login meant for it; it saw %q", headers)
	}
}

// TestOneShotInterrupted sends SIGINT, as Ctrl-C does, while the second of
// three paks is pulling through a proxy that holds a layer back: prepull
// exits 130; the first pak, present before, stays present; the second and
// the third, never tried, are reported interrupted, without the engine
// call's error.
func TestOneShotInterrupted(t *testing.T) {
	f := e2e.NewFixture(t, "proj/interrupt")
	f.Prepull(nil, "--config", f.Config, f.Pak).Want(t, 0)
	digest := f.Docker.PushImage(t, f.Reg, "proj/interrupt-big", e2e.FaultImage)
	p := testenv.StartFaultProxy(t, f.Reg.Addr)
	p.StallBlobs(testenv.Stall{After: 256 << 10, MinSize: 512 << 10})
	t.Cleanup(p.Release)
	slow, _ := f.PakVia(p.Addr, "proj/interrupt-big", digest)
	third := paktest.Pak{Kind: "Third", Registry: f.Reg.Addr, Repository: "/proj/other"}.WriteFile(t, t.TempDir())
	cfg := f.WriteConfig(f.LoginFor(f.Reg.Addr, p.Addr))

	r := f.PrepullInterrupted(func() {
		e2e.WaitUntil(t, "a layer download held back", func() bool { return p.Stalls().Waiting > 0 })
	}, "--config", cfg, "--json", f.Pak, slow, third)
	rs := r.Results(t)
	if len(rs) != 3 || rs[0].Status != "present" || rs[0].ExitCode != 0 {
		t.Fatalf("results = %+v; want the first pak still present", rs)
	}
	for _, res := range rs[1:] {
		if res.Status != "interrupted" || res.ExitCode != 130 || res.Error != "interrupted (Ctrl-C, SIGINT)" {
			t.Errorf("result %+v; want interrupted, exit_code 130, and no engine error", res)
		}
	}
	for _, engineWords := range []string{"http", "docker.sock", "context canceled", "pull failed"} {
		if strings.Contains(r.Stdout+r.Stderr, engineWords) {
			t.Errorf("the output holds %q:\nstdout:\n%s\nstderr:\n%s", engineWords, r.Stdout, r.Stderr)
		}
	}
}

// TestOneShotPasswordFileTrailingSpace writes the password file with a
// space before its newline, as an editor may: the registry rejects the
// login (exit 4), and prepull's error and warning name the file and the
// space, never the password.
func TestOneShotPasswordFileTrailingSpace(t *testing.T) {
	f := e2e.NewFixture(t, "proj/trailing")
	if err := os.WriteFile(f.PasswordFile(), []byte(f.Password+" \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := f.Prepull(nil, "--config", f.Config, "--json", f.Pak)
	r.Want(t, 4)
	note := "password file " + f.PasswordFile() + " ends with spaces or tabs"
	if rs := r.Results(t); len(rs) != 1 || !strings.Contains(rs[0].Error, "note: "+note) {
		t.Fatalf("results = %+v; want the rejection to note %q", rs, note)
	}
	if !strings.Contains(r.Stderr, note) {
		t.Errorf("stderr does not warn %q:\n%s", note, r.Stderr)
	}
}
