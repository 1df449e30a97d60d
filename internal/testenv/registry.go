//go:build linux

package testenv

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prepull/prepull/internal/testenv/await"
)

// RegistryOptions configure StartRegistry.
type RegistryOptions struct {
	// User and Password, when User is set, make the registry require that
	// login (htpasswd, bcrypt). Without them it lets anyone pull and push.
	User     string
	Password string
	// Storage is the registry's storage directory; a new temporary one when
	// empty. Pass the Storage of an earlier registry to serve its content.
	Storage string
	// TokenAuth makes the registry require Bearer tokens from a token server
	// of its own (see TokenServer) that grants pull and push to User with
	// Password, instead of an htpasswd login.
	TokenAuth bool
	// TLSCert and TLSKey, when set, are PEM files of the certificate and key
	// the registry serves HTTPS with, instead of plain HTTP.
	TLSCert string
	TLSKey  string
	// Netns, when set, runs the registry inside that network namespace, on
	// its address, instead of on 127.0.0.1. Docker Engine verifies TLS
	// there; it does not on 127.0.0.0/8.
	Netns *Netns
}

// Registry is a docker-registry process serving plain HTTP (or HTTPS) on a
// port of 127.0.0.1 (or of a Netns), stopped when its test ends.
type Registry struct {
	// Addr is "127.0.0.1:PORT" (or "NETNS-ADDRESS:PORT"), the registry's host
	// for image references. It stays the same across Stop and Start.
	Addr string
	// User and Password are the login the registry requires; empty when it
	// requires none.
	User     string
	Password string
	// Storage is the directory that holds the registry's content.
	Storage string
	// Token is the registry's token server when it was started with
	// TokenAuth, nil otherwise.
	Token *TokenServer

	dir     string
	bin     string
	scheme  string // "http" or "https"
	tlsCert string
	tlsKey  string
	netns   *Netns

	service // docker-registry serve CONFIG, inside the netns if any
	closing chan struct{}
	pending sync.WaitGroup // StartAfter goroutines
}

// StartRegistry starts a registry on a free port of 127.0.0.1 (or of
// opts.Netns) and waits until it answers GET /v2/. It calls Require; the
// registry is stopped when t ends, and the tail of its log is logged if t
// failed.
func StartRegistry(t testing.TB, opts RegistryOptions) *Registry {
	t.Helper()
	Require(t)
	r := &Registry{
		User:     opts.User,
		Password: opts.Password,
		Storage:  opts.Storage,
		dir:      t.TempDir(),
		bin:      partRegistry.mustPath(t),
		closing:  make(chan struct{}),
		scheme:   "http",
		tlsCert:  opts.TLSCert,
		tlsKey:   opts.TLSKey,
		netns:    opts.Netns,
	}
	if (opts.TLSCert == "") != (opts.TLSKey == "") {
		t.Fatal("testenv: RegistryOptions: set both TLSCert and TLSKey, or neither")
	}
	if opts.TLSCert != "" {
		r.scheme = "https"
	}
	r.service = service{
		name:    "docker-registry",
		logPath: filepath.Join(r.dir, "registry.log"),
		env:     cleanEnv([]string{"REGISTRY_", "OTEL_"}), // REGISTRY_* would override the config file
		argv:    []string{r.bin, "serve", filepath.Join(r.dir, "config.yml")},
		probe:   r.probe,
		grace:   5 * time.Second,
	}
	if r.netns != nil {
		r.argv = r.netns.Exec(t, r.argv...)
	}
	if r.Storage == "" {
		r.Storage = filepath.Join(r.dir, "storage")
	}
	if err := os.MkdirAll(r.Storage, 0o700); err != nil {
		t.Fatalf("testenv: registry storage: %v", err)
	}
	switch {
	case opts.TokenAuth && r.User == "":
		t.Fatal("testenv: RegistryOptions: TokenAuth needs a User and Password")
	case opts.TokenAuth:
		r.Token = StartTokenServer(t, r.dir, r.User, r.Password)
	case r.User != "":
		r.writeHtpasswd(t)
	}
	t.Cleanup(func() {
		close(r.closing)
		r.pending.Wait()
		if t.Failed() {
			t.Logf("testenv: last lines of %s:\n%s", r.logPath, logTail(r.logPath, 30))
		}
		if err := r.stop(); err != nil {
			t.Errorf("testenv: %v", err)
		}
	})

	// The port was free a moment ago; another process may take it first.
	var err error
	for try := 0; try < 5; try++ {
		var port int
		if port, err = freePort(); err != nil {
			break
		}
		host := "127.0.0.1"
		if r.netns != nil {
			host = r.netns.Addr
		}
		r.Addr = host + ":" + strconv.Itoa(port)
		if err = r.writeConfig(); err != nil {
			break
		}
		if err = r.start(await.Limit(t)); err == nil || !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	if err != nil {
		t.Fatalf("testenv: start the registry: %v", err)
	}
	return r
}

// writeHtpasswd writes the bcrypt htpasswd file, passing the password to
// htpasswd on its standard input rather than its command line. It replaces
// the file atomically, with a modification time later than the old one's:
// docker-registry (2.8 too) reads the file again when that time changes.
func (r *Registry) writeHtpasswd(t testing.TB) {
	t.Helper()
	htpasswd := partHtpasswd.mustPath(t)
	out, err := runCmd(os.Environ(), strings.NewReader(r.Password), htpasswd, "-i", "-B", "-n", r.User)
	if err != nil {
		t.Fatalf("testenv: htpasswd: %v", err)
	}
	path := filepath.Join(r.dir, "htpasswd")
	mtime := time.Now()
	if old, err := os.Stat(path); err == nil && !mtime.After(old.ModTime()) {
		mtime = old.ModTime().Add(time.Second) // the clock's granularity is coarse
	}
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(strings.TrimSpace(out)+"\n"), 0o600); err != nil {
		t.Fatalf("testenv: htpasswd: %v", err)
	}
	if err := os.Chtimes(tmp, mtime, mtime); err != nil {
		t.Fatalf("testenv: htpasswd: %v", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatalf("testenv: htpasswd: %v", err)
	}
}

// SetPassword makes the running registry accept password, and only it, for
// its User from its next request on: a rotated login. It needs a registry
// started with User and Password (htpasswd, not TokenAuth).
func (r *Registry) SetPassword(t testing.TB, password string) {
	t.Helper()
	if r.User == "" || r.Token != nil {
		t.Fatal("testenv: SetPassword needs a registry with an htpasswd login")
	}
	r.Password = password
	r.writeHtpasswd(t)
}

// writeConfig writes the registry's config.yml for r.Addr.
func (r *Registry) writeConfig() error {
	var b strings.Builder
	fmt.Fprintf(&b, "version: 0.1\n")
	fmt.Fprintf(&b, "log:\n  level: info\n")
	fmt.Fprintf(&b, "storage:\n  filesystem:\n    rootdirectory: %q\n  delete:\n    enabled: true\n", r.Storage)
	fmt.Fprintf(&b, "http:\n  addr: %q\n", r.Addr)
	if r.tlsCert != "" {
		fmt.Fprintf(&b, "  tls:\n    certificate: %q\n    key: %q\n", r.tlsCert, r.tlsKey)
	}
	switch {
	case r.Token != nil:
		fmt.Fprintf(&b, "auth:\n  token:\n    realm: %q\n    service: %q\n    issuer: %q\n    rootcertbundle: %q\n",
			r.Token.Realm, r.Token.Service, r.Token.Issuer, r.Token.CertBundle)
	case r.User != "":
		fmt.Fprintf(&b, "auth:\n  htpasswd:\n    realm: basic-realm\n    path: %q\n", filepath.Join(r.dir, "htpasswd"))
	}
	if err := os.WriteFile(filepath.Join(r.dir, "config.yml"), []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("write registry config: %w", err)
	}
	return nil
}

// Start starts the registry again after Stop, on the same address and
// storage, and waits until it answers.
func (r *Registry) Start(t testing.TB) {
	t.Helper()
	if err := r.start(await.Limit(t)); err != nil {
		t.Fatalf("testenv: start the registry: %v", err)
	}
}

// Stop stops the registry; its address then refuses connections.
func (r *Registry) Stop(t testing.TB) {
	t.Helper()
	if err := r.stop(); err != nil {
		t.Fatalf("testenv: %v", err)
	}
}

// StartAfter starts the stopped registry again after d, in the background,
// and returns at once: for "registry down at first, back a few seconds
// later" tests. It fails t at once if the registry is running. A failure to
// start later is reported with t.Error; a test that ends first cancels it.
func (r *Registry) StartAfter(t testing.TB, d time.Duration) {
	t.Helper()
	if r.running() {
		t.Fatal("testenv: StartAfter needs a stopped registry: call Stop first")
	}
	r.pending.Add(1)
	go func() {
		defer r.pending.Done()
		select {
		case <-time.After(d):
		case <-r.closing:
			return
		}
		if err := r.start(await.Limit(t)); err != nil {
			t.Errorf("testenv: start the registry after %v: %v", d, err)
		}
	}()
}

// probe checks that GET /v2/ answers 200 (open) or 401 (login required).
// Over HTTPS it does not verify the certificate: it asks whether the
// registry is up, not whether clients trust it.
func (r *Registry) probe() error {
	client := &http.Client{Timeout: 2 * time.Second}
	if r.scheme == "https" {
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	}
	defer client.CloseIdleConnections()
	resp, err := client.Get(r.scheme + "://" + r.Addr + "/v2/")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusUnauthorized {
		return fmt.Errorf("GET /v2/: %s", resp.Status)
	}
	return nil
}
