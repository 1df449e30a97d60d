//go:build linux

package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prepull/prepull/internal/config"
	"github.com/prepull/prepull/internal/e2e"
	"github.com/prepull/prepull/internal/engine"
	"github.com/prepull/prepull/internal/pak/paktest"
	"github.com/prepull/prepull/internal/testenv"
)

// dockerCertsDir is where Docker Engine 20.10, running as root, reads the CAs
// of registries; it has no option to read them elsewhere. It is also the
// default certs_dir.
const dockerCertsDir = config.DefaultCertsDir

// newRegistryFixture is newFixture for a registry the test started itself:
// it pushes a fresh image to reg as repo, and writes a pak naming it and a
// configuration whose registries list is registries, YAML such as
// "registries: []\n", or the login of reg's user when registries is empty.
func newRegistryFixture(t *testing.T, reg *testenv.Registry, repo, registries string) *e2e.Fixture {
	t.Helper()
	return e2e.NewRegistryFixtureOn(t, testenv.Docker(t), reg, repo, registries)
}

func TestRegistryAnonymousPublic(t *testing.T) {
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	f := newRegistryFixture(t, reg, "public/adapter", "registries: []\n")
	f.PulledOnce(f.Config, "anonymous")
}

func TestRegistryNestedPathWithPort(t *testing.T) {
	f := e2e.NewFixture(t, "proj/team/sub/adapter")
	if _, port, err := net.SplitHostPort(f.Reg.Addr); err != nil || port == "" {
		t.Fatalf("registry %s has no port", f.Reg.Addr)
	}
	if want := f.Reg.Addr + "/proj/team/sub/adapter@" + f.Digest; f.Ref != want {
		t.Fatalf("reference %s, want %s", f.Ref, want)
	}
	f.PulledOnce(f.Config, "password_file")

	var inspected []map[string]any
	out := f.Prepull(nil, "inspect", "--json", "--config", f.Config, f.Pak)
	out.Want(t, 0)
	if err := json.Unmarshal([]byte(out.Stdout), &inspected); err != nil {
		t.Fatal(err)
	}
	if inspected[0]["registry"] != f.Reg.Addr || inspected[0]["repository"] != "proj/team/sub/adapter" {
		t.Fatalf("inspect = %v, want registry %s and repository proj/team/sub/adapter", inspected[0], f.Reg.Addr)
	}
}

func TestRegistryTokenAuthRobotUser(t *testing.T) {
	const robot = "robot$proj+pull"
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{User: robot, Password: "Robot-" + e2e.RandomWord(t), TokenAuth: true})
	entry := func(pwFile string) string {
		return fmt.Sprintf("registries:\n  - host: %s\n    username: %s\n    password_file: %s\n", reg.Addr, robot, pwFile)
	}
	f := newRegistryFixture(t, reg, "proj/tok/adapter", "registries: []\n")
	cfg := f.WriteConfig(entry(f.PasswordFile()))

	// The registry wants a Bearer token: anonymous requests get a challenge.
	resp, err := http.Get("http://" + reg.Addr + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ch := resp.Header.Get("WWW-Authenticate"); resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(ch, `Bearer realm="`+reg.Token.Realm+`"`) {
		t.Fatalf("GET /v2/: %s, WWW-Authenticate %q; want 401 with a Bearer challenge", resp.Status, ch)
	}

	before := len(reg.Token.Grants())
	f.PulledOnce(cfg, "password_file")
	var pulled bool
	for _, g := range reg.Token.Grants()[before:] {
		if g.Account == robot && slices.Contains(g.Scopes, "repository:proj/tok/adapter:pull") {
			pulled = true
		}
	}
	if !pulled {
		t.Fatalf("the token server issued no pull token for proj/tok/adapter to %s: %+v", robot, reg.Token.Grants())
	}

	wrong := filepath.Join(f.Dir, "wrong.password")
	if err := os.WriteFile(wrong, []byte("not-the-password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f.Docker.RemoveImage(t, f.Ref)
	r := f.Prepull(nil, "--config", f.WriteConfig(entry(wrong)), "--json", f.Pak)
	r.Want(t, 4)
	rs := r.Results(t)
	if !strings.Contains(rs[0].Error, `"`+robot+`"`) {
		t.Errorf("error %q should name the user %s", rs[0].Error, robot)
	}
	t.Logf("rejected login: %s", rs[0].Error)
}

// engineCADir returns the folder where Docker Engine reads host's CAs and
// removes it, and /etc/docker/certs.d if this test made it, when t ends.
// The host's address and port are the test's own, so no one else uses it.
func engineCADir(t *testing.T, host string) string {
	t.Helper()
	dir := filepath.Join(dockerCertsDir, host)
	_, err := os.Stat(dockerCertsDir)
	madeCertsDir := errors.Is(err, fs.ErrNotExist)
	if err := os.RemoveAll(dir); err != nil { // a leftover of a killed run
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Error(err)
		}
		if madeCertsDir {
			_ = os.Remove(dockerCertsDir) // only when empty
		}
	})
	return dir
}

func TestRegistryTLSPrivateCA(t *testing.T) {
	ns := testenv.NewNetns(t)
	tf := e2e.NewTLSFiles(t, ns.Addr)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{
		User: "alice", Password: "pw-" + e2e.RandomWord(t), TLSCert: tf.Cert, TLSKey: tf.Key, Netns: ns,
	})
	caDir := engineCADir(t, reg.Addr)
	installed := filepath.Join(caDir, "ca.crt")

	// The harness pushes through the same engine, so it trusts the CA for
	// the push only.
	if err := os.MkdirAll(caDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(installed, tf.CAPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	f := newRegistryFixture(t, reg, "proj/tls/adapter", "registries: []\n")
	if err := os.RemoveAll(caDir); err != nil {
		t.Fatal(err)
	}
	entry := fmt.Sprintf("registries:\n  - host: %s\n    username: alice\n    password_file: %s\n", reg.Addr, f.PasswordFile())

	t.Run("without ca_file the error names the fix", func(t *testing.T) {
		r := f.Prepull(nil, "--config", f.WriteConfig(entry), "--json", f.Pak)
		r.Want(t, 1)
		want := fmt.Sprintf("registry %s presents a certificate signed by an unknown authority: "+
			"set ca_file for it in the registries list (prepull installs it as %s), or place the CA there yourself",
			reg.Addr, installed)
		rs := r.Results(t)
		if !strings.Contains(rs[0].Error, want) || !strings.Contains(rs[0].Error, "x509:") {
			t.Fatalf("error:\n\t%s\nwant it to contain\n\t%s\nand the engine's x509 message", rs[0].Error, want)
		}
		t.Logf("error: %s", rs[0].Error)
		if _, err := os.Stat(installed); err == nil {
			t.Fatal("a CA was installed without ca_file")
		}
	})

	t.Run("a ca_file that is no certificate is a configuration error", func(t *testing.T) {
		bad := filepath.Join(f.Dir, "not-a-ca.pem")
		if err := os.WriteFile(bad, []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		r := f.Prepull(nil, "--config", f.WriteConfig(entry+"    ca_file: "+bad+"\n"), f.Pak)
		r.Want(t, 2)
		if !strings.Contains(r.Stdout+r.Stderr, bad) {
			t.Fatalf("output should name %s:\n%s%s", bad, r.Stdout, r.Stderr)
		}
	})

	t.Run("with ca_file prepull installs the CA and pulls", func(t *testing.T) {
		cfg := f.WriteConfig(entry + "    ca_file: " + tf.CA + "\n")
		f.PulledOnce(cfg, "password_file")
		got, err := os.ReadFile(installed)
		if err != nil || string(got) != string(tf.CAPEM) {
			t.Fatalf("%s = %q, %v; want the CA", installed, got, err)
		}
		st, err := os.Stat(installed)
		if err != nil || st.Mode().Perm() != 0o644 {
			t.Fatalf("%s: %v, %v; want mode 0644", installed, st, err)
		}
		// Again, forced: the same CA is left alone.
		r := f.Prepull(nil, "--config", cfg, "--force", f.Pak)
		r.Want(t, 0)
		if st2, err := os.Stat(installed); err != nil || !st2.ModTime().Equal(st.ModTime()) {
			t.Fatalf("an identical ca.crt was rewritten: %v", err)
		}
	})
}

// TestRegistryDockerHubViaMirror pulls from Docker Hub the ways paks name
// it: docker.io, and the Docker Hub namespace of an SDK 0.x pak
// (REGISTRY=myteam, REPOSITORY=/legacy), whose reference myteam/legacy@DIGEST
// is pulled and verified exactly so.
func TestRegistryDockerHubViaMirror(t *testing.T) {
	// No internet here: a docker.io pull can only succeed through the mirror.
	mirror := testenv.StartRegistry(t, testenv.RegistryOptions{})
	d := testenv.Docker(t)
	tests := []struct {
		name, repo string
		pak        func(digest string) paktest.Pak
		ref        string // the reference without "@DIGEST"
	}{
		{"docker.io", "myorg/adapter", func(digest string) paktest.Pak {
			return paktest.Pak{Kind: "HubAdapter", Version: "1.0.0", Registry: "docker.io", Repository: "/myorg/adapter", Digest: digest}
		}, "docker.io/myorg/adapter"},
		{"SDK 0.x namespace", "myteam/legacy", func(digest string) paktest.Pak {
			return paktest.Pak{Release: paktest.Release051, Kind: "LegacyAdapter", Version: "0.5.1", From: "myteam/legacy", Digest: digest}
		}, "myteam/legacy"},
	}
	digests := map[string]string{}
	for _, tt := range tests {
		digests[tt.name] = d.PushImage(t, mirror, tt.repo, testenv.ImageOptions{})
	}
	d.UseMirror(t, mirror)

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			digest := digests[tt.name]
			f := &e2e.Fixture{T: t, Dir: t.TempDir(), Password: "unused-" + e2e.RandomWord(t), Docker: d, Reg: mirror, Digest: digest}
			f.DockerConfigDir = filepath.Join(f.Dir, "docker")
			if err := os.MkdirAll(f.DockerConfigDir, 0o700); err != nil {
				t.Fatal(err)
			}
			f.Pak = tt.pak(digest).WriteFile(t, f.Dir)
			f.Ref = tt.ref + "@" + digest
			t.Cleanup(func() { d.RemoveImage(t, f.Ref) })

			cfg := f.WriteConfig("registries: []\n")
			r := f.Prepull(nil, "--config", cfg, "inspect", "--json", f.Pak)
			r.Want(t, 0)
			inspected := e2e.Decode[[]map[string]any](t, r)
			if len(inspected) != 1 || inspected[0]["reference"] != f.Ref || inspected[0]["registry"] != "docker.io" {
				t.Fatalf("inspect --json = %v, want reference %s from registry docker.io", inspected, f.Ref)
			}
			f.PulledOnce(cfg, "anonymous")
			// Present now, under exactly that name.
			r = f.Prepull(nil, "--config", cfg, "--json", f.Pak)
			r.Want(t, 0)
			if rs := r.Results(t); len(rs) != 1 || rs[0].Status != "present" {
				t.Fatalf("second run: %+v, want present", rs)
			}
		})
	}
}

// apiRecorder is a proxy in front of the engine's API socket that announces
// an older API version in /_ping, as an older engine would, and records the
// paths it forwards.
type apiRecorder struct {
	mu    sync.Mutex
	paths []string
}

// start serves a proxy to the engine at host (unix://PATH) on a unix socket
// of its own that announces API version announce, and returns its address
// for --docker-host. It stops when t ends.
func (rec *apiRecorder) start(t *testing.T, host, announce string) string {
	t.Helper()
	sock := strings.TrimPrefix(host, "unix://")
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(&url.URL{Scheme: "http", Host: "docker"})
			rec.mu.Lock()
			rec.paths = append(rec.paths, pr.In.URL.Path)
			rec.mu.Unlock()
		},
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}},
		ModifyResponse: func(resp *http.Response) error {
			if strings.HasSuffix(resp.Request.URL.Path, "/_ping") {
				resp.Header.Set("Api-Version", announce)
			}
			return nil
		},
		FlushInterval: -1, // pull progress streams
	}
	dir, err := os.MkdirTemp("/tmp", "pp-api-") // unix socket paths must stay short
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	l, err := net.Listen("unix", filepath.Join(dir, "docker.sock"))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: proxy, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close() })
	return "unix://" + l.Addr().String()
}

// versions returns the API versions of the recorded paths ("" for
// unversioned ones such as /_ping).
func (rec *apiRecorder) versions() map[string]int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	seen := map[string]int{}
	for _, p := range rec.paths {
		v := ""
		if rest, ok := strings.CutPrefix(p, "/v"); ok {
			v, _, _ = strings.Cut(rest, "/")
		}
		seen[v]++
	}
	return seen
}

func TestRegistryEngineAPINegotiation(t *testing.T) {
	f := e2e.NewFixture(t, "proj/apiversion")
	server := f.Docker.Run(t, "version", "--format", "{{.Server.APIVersion}} {{.Server.MinAPIVersion}} {{.Server.Version}}")
	t.Logf("Docker Engine under test: API %s", server)
	serverAPI := strings.Fields(server)[0]

	eng, err := engine.NewDocker(f.Docker.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	negotiated, err := eng.Ping(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("negotiated API version: %s", negotiated)
	if negotiated != serverAPI {
		t.Fatalf("negotiated API %s with an engine of API %s, want the engine's", negotiated, serverAPI)
	}

	// The client's floor: an engine that announces 1.24 (the version the
	// client assumes when an engine announces none) is spoken to in 1.24,
	// and a whole pull works in it.
	const oldest = "1.24"
	var rec apiRecorder
	proxied := rec.start(t, f.Docker.Host, oldest)
	r := f.Prepull(nil, "--config", f.Config, "--docker-host", proxied, "--json", f.Pak)
	r.Want(t, 0)
	if rs := r.Results(t); rs[0].Status != "pulled" {
		t.Fatalf("results = %+v, want pulled through API %s", rs, oldest)
	}
	seen := rec.versions()
	t.Logf("requests by API version through an engine announcing %s: %v", oldest, seen)
	for v := range seen {
		if v != "" && v != oldest {
			t.Errorf("prepull used API %s with an engine that announced %s: %v", v, oldest, seen)
		}
	}
	if seen[oldest] == 0 {
		t.Fatalf("no request used API %s: %v", oldest, seen)
	}
}

// TestRegistrySDK1LocalhostMangling: SDK 1.x turns a registry given as
// localhost:PORT/team/app into REGISTRY=registry.hub.docker.com,
// REPOSITORY=/localhost. prepull reads it as the proxy would, and both
// inspect and the failed pull explain it and say what to rebuild.
func TestRegistrySDK1LocalhostMangling(t *testing.T) {
	f := e2e.NewFixture(t, "team/app")
	_, port, err := net.SplitHostPort(f.Reg.Addr)
	if err != nil {
		t.Fatal(err)
	}
	p := paktest.Pak{Release: paktest.Release131, From: "localhost:" + port + "/team/app", Digest: f.Digest}.WriteFile(t, t.TempDir())
	ref := "registry.hub.docker.com/localhost@" + f.Digest

	r := f.Prepull(nil, "inspect", "--json", "--config", f.Config, p)
	r.Want(t, 0)
	inspected := e2e.Decode[[]map[string]any](t, r)
	if inspected[0]["reference"] != ref || !strings.Contains(fmt.Sprint(inspected[0]["warnings"]), "127.0.0.1:PORT") {
		t.Fatalf("inspect = %v, want reference %s with a warning", inspected[0], ref)
	}
	if !strings.Contains(r.Stderr, "warning: ") || !strings.Contains(r.Stderr, "localhost:PORT/...") {
		t.Fatalf("inspect stderr does not warn:\n%s", r.Stderr)
	}

	// No internet here: the pull of Docker Hub's "localhost" fails, however
	// it fails, and says why.
	r = f.Prepull(nil, "--config", f.Config, "--timeout", "5s", "--json", p)
	if r.Code == 0 {
		t.Fatalf("a pull of %s succeeded", ref)
	}
	rs := r.Results(t)
	if len(rs) != 1 || rs[0].Reference != ref || !strings.Contains(rs[0].Error, "note: REGISTRY=registry.hub.docker.com with the one-component REPOSITORY=/localhost") ||
		!strings.Contains(rs[0].Error, "Rebuild the pak") {
		t.Fatalf("results = %+v, want the failed pull of %s to explain the mangling", rs, ref)
	}
	t.Logf("exit %d: %s", r.Code, rs[0].Error)
}

// TestRegistryCAFolderIsCanonical: a CA configured for localhost:PORT is
// installed under that name only, whichever spelling a pak uses, and a pak
// spelling it LOCALHOST:PORT is still pulled exactly as it says, with a
// warning naming the folder Docker Engine reads for it (issue 11.5). The
// registry is plain HTTP on loopback, which the engine never verifies, so
// certs_dir is a folder of the test's own.
func TestRegistryCAFolderIsCanonical(t *testing.T) {
	f := e2e.NewFixture(t, "proj/canonical")
	_, port, err := net.SplitHostPort(f.Reg.Addr)
	if err != nil {
		t.Fatal(err)
	}
	certsDir := filepath.Join(f.Dir, "certs.d")
	entry := fmt.Sprintf("certs_dir: %s\nregistries:\n  - host: localhost:%s\n    username: alice\n    password_file: %s\n    ca_file: %s\n",
		certsDir, port, f.PasswordFile(), e2e.NewTLSFiles(t, "127.0.0.1").CA)
	cfg := f.WriteConfig(entry)
	for _, host := range []string{"localhost", "LOCALHOST", "LocalHost"} {
		registry := host + ":" + port
		p := paktest.Pak{Kind: "Canon" + host, Registry: registry, Repository: "/proj/canonical", Digest: f.Digest}.WriteFile(t, t.TempDir())
		ref := registry + "/proj/canonical@" + f.Digest
		r := f.Prepull(nil, "--config", cfg, "--json", p)
		r.Want(t, 0)
		if rs := r.Results(t); len(rs) != 1 || rs[0].Reference != ref || rs[0].Status != "pulled" || !strings.HasPrefix(rs[0].CredentialSource, "password_file") {
			t.Fatalf("REGISTRY=%s: results %+v, want %s pulled with the localhost entry's login", registry, rs, ref)
		}
		warned := strings.Contains(r.Stderr, "Docker Engine reads the CA for it from "+filepath.Join(certsDir, registry))
		if warned != (host != "localhost") {
			t.Errorf("REGISTRY=%s: warned about the engine's folder: %v; stderr:\n%s", registry, warned, r.Stderr)
		}
		f.Docker.RemoveImage(t, ref)
	}
	entries, err := os.ReadDir(certsDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "localhost:"+port {
		t.Fatalf("%s holds %v, want only localhost:%s", certsDir, entries, port)
	}
}
