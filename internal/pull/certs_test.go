package pull

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/prepull/prepull/internal/config"
	"github.com/prepull/prepull/internal/credentials"
	"github.com/prepull/prepull/internal/engine"
	"github.com/prepull/prepull/internal/pak"
)

// testCA returns a new self-signed CA certificate as PEM.
func testCA(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "prepull test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestInstallCA(t *testing.T) {
	ca := testCA(t)
	other := testCA(t)
	keyOnly := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: []byte("not a key")})
	const host = "harbor.example.com:8443"

	tests := []struct {
		name        string
		existing    []byte // ca.crt already in the host's folder, nil for none
		caFile      []byte // nil: ca_file does not exist
		wantChanged bool
		wantInvalid bool
	}{
		{name: "fresh install", caFile: ca, wantChanged: true},
		{name: "identical content is left alone", existing: ca, caFile: ca},
		{name: "different content is replaced", existing: other, caFile: ca, wantChanged: true},
		{name: "a bundle with a key and a certificate", caFile: append(append([]byte{}, keyOnly...), ca...), wantChanged: true},
		{name: "no CERTIFICATE block", caFile: keyOnly, wantInvalid: true},
		{name: "not PEM at all", caFile: []byte("hello\n"), wantInvalid: true},
		{name: "empty file", caFile: []byte{}, wantInvalid: true},
		{name: "missing file", wantInvalid: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			certsDir := filepath.Join(t.TempDir(), "certs.d")
			hostDir := filepath.Join(certsDir, host)
			// A client certificate of the administrator's own must survive.
			if err := os.MkdirAll(hostDir, 0o700); err != nil {
				t.Fatal(err)
			}
			neighbour := writeFile(t, hostDir, "client.cert", []byte("the admin's client certificate"))
			var oldMod time.Time
			if tt.existing != nil {
				p := writeFile(t, hostDir, "ca.crt", tt.existing)
				old := time.Now().Add(-time.Hour)
				if err := os.Chtimes(p, old, old); err != nil {
					t.Fatal(err)
				}
				oldMod = old
			}
			caFile := filepath.Join(t.TempDir(), "registry-ca.pem")
			if tt.caFile != nil {
				writeFile(t, filepath.Dir(caFile), filepath.Base(caFile), tt.caFile)
			}

			path, changed, err := installCA(certsDir, host, caFile)
			if tt.wantInvalid {
				if !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), caFile) || !strings.Contains(err.Error(), host) {
					t.Fatalf("err = %v, want a configuration error naming %s and %s", err, caFile, host)
				}
				if _, err := os.Stat(filepath.Join(hostDir, "ca.crt")); tt.existing == nil && err == nil {
					t.Fatal("an invalid ca_file was installed")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if want := filepath.Join(certsDir, host, "ca.crt"); path != want {
				t.Errorf("path = %s, want %s", path, want)
			}
			if changed != tt.wantChanged {
				t.Errorf("changed = %v, want %v", changed, tt.wantChanged)
			}
			got, err := os.ReadFile(path)
			if err != nil || string(got) != string(tt.caFile) {
				t.Fatalf("ca.crt = %q, %v; want the ca_file's content", got, err)
			}
			st, _ := os.Stat(path)
			if st.Mode().Perm() != 0o644 && tt.wantChanged {
				t.Errorf("ca.crt mode %04o, want 0644", st.Mode().Perm())
			}
			if !tt.wantChanged && !st.ModTime().Equal(oldMod) {
				t.Error("an identical ca.crt was rewritten")
			}
			if data, err := os.ReadFile(neighbour); err != nil || string(data) != "the admin's client certificate" {
				t.Errorf("another file of the folder changed: %q, %v", data, err)
			}
			entries, _ := os.ReadDir(hostDir)
			if len(entries) != 2 {
				t.Errorf("folder holds %d files, want ca.crt and client.cert: %v", len(entries), entries)
			}
		})
	}
}

func TestInstallCAMakesFolders(t *testing.T) {
	certsDir := filepath.Join(t.TempDir(), "etc", "docker", "certs.d")
	caFile := writeFile(t, t.TempDir(), "ca.pem", testCA(t))
	path, changed, err := installCA(certsDir, "10.0.0.1:5000", caFile)
	if err != nil || !changed {
		t.Fatalf("installCA = %s, %v, %v; want a fresh install", path, changed, err)
	}
	st, err := os.Stat(filepath.Dir(path))
	if err != nil || st.Mode().Perm() != 0o755 {
		t.Fatalf("host folder %v, %v; want mode 0755", st, err)
	}
}

func TestExplainCertificate(t *testing.T) {
	raw := fmt.Errorf("login to h: %w: %w", engine.ErrCertificate,
		errors.New(`Error response from daemon: Get "https://harbor.example.com:8443/v2/": x509: certificate signed by unknown authority`))
	tests := []struct {
		name, certsDir, installed string
		want                      []string
	}{
		{name: "no ca_file", certsDir: "/etc/docker/certs.d", want: []string{
			"registry harbor.example.com:8443 presents a certificate signed by an unknown authority: " +
				"set ca_file for it in the registries list (prepull installs it as /etc/docker/certs.d/harbor.example.com:8443/ca.crt), " +
				"or place the CA there yourself",
			"x509: certificate signed by unknown authority",
		}},
		{name: "ca_file installed but wrong", certsDir: "/etc/docker/certs.d", installed: "/etc/docker/certs.d/harbor.example.com:8443/ca.crt", want: []string{
			"the CA installed from ca_file as /etc/docker/certs.d/harbor.example.com:8443/ca.crt does not verify it",
			"names harbor.example.com",
		}},
		{name: "puller installs no CAs", want: []string{
			"place the CA that signed it as /etc/docker/certs.d/harbor.example.com:8443/ca.crt",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tgt := pak.Target{Registry: "harbor.example.com:8443", Reference: "harbor.example.com:8443/proj/adapter@" + digest}
			err := explainCertificate(raw, tgt, tt.certsDir, tt.installed)
			if !errors.Is(err, engine.ErrCertificate) {
				t.Errorf("%v does not wrap engine.ErrCertificate", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n\t%v\nshould contain\n\t%s", err, w)
				}
			}
		})
	}
}

func TestEnsureInstallsCABeforeLogin(t *testing.T) {
	x509Err := fmt.Errorf("login: %w: x509: certificate signed by unknown authority", engine.ErrCertificate)
	tests := []struct {
		name        string
		caFile      []byte // nil: no ca_file in the entry
		certsDir    bool
		loginErr    error
		want        Status
		wantErr     error
		wantErrText string
		wantCA      bool
		logins      int
	}{
		{name: "ca_file installed, then login and pull", caFile: testCA(t), certsDir: true, want: Pulled, wantCA: true, logins: 1},
		{name: "invalid ca_file stops before the login", caFile: []byte("nope"), certsDir: true, want: Failed, wantErr: config.ErrInvalid},
		{name: "no ca_file: the x509 error says how to fix it", certsDir: true, loginErr: x509Err, want: Failed, wantErr: engine.ErrCertificate,
			wantErrText: "set ca_file for it in the registries list (prepull installs it as ", logins: 1},
		{name: "no certs dir: nothing installed", caFile: testCA(t), want: Pulled, logins: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			entry := config.Registry{Host: "harbor.example:8443", Username: "robot$pull", PasswordEnv: "PW"}
			if tt.caFile != nil {
				entry.CAFile = writeFile(t, t.TempDir(), "ca.pem", tt.caFile)
			}
			var certsDir string
			if tt.certsDir {
				certsDir = filepath.Join(t.TempDir(), "certs.d")
			}
			eng := &fakeEngine{verifies: true, loginErr: tt.loginErr}
			p := &Puller{
				Engine:      eng,
				Credentials: &credentials.Resolver{Config: &config.Config{Registries: []config.Registry{entry}}, DockerConfigDir: t.TempDir(), Getenv: func(string) string { return testPassword }},
				Log:         zap.NewNop(),
				Backoff:     fastBackoff,
				CertsDir:    certsDir,
			}
			r := p.Ensure(context.Background(), target, Options{})
			checkResult(t, r, tt.want, tt.wantErr, tt.wantErrText)
			if eng.logins != tt.logins {
				t.Errorf("logins = %d, want %d", eng.logins, tt.logins)
			}
			if certsDir != "" {
				_, err := os.Stat(CAPath(certsDir, target.Registry))
				if (err == nil) != tt.wantCA {
					t.Errorf("ca.crt installed = %v, want %v", err == nil, tt.wantCA)
				}
			}
		})
	}
}

// TestExplainCertificateSpelling: when the pak spells the registry otherwise
// than its canonical form, the fix names the folder Docker Engine reads.
func TestExplainCertificateSpelling(t *testing.T) {
	raw := fmt.Errorf("pull: %w: x509: certificate signed by unknown authority", engine.ErrCertificate)
	tgt := pak.Target{Registry: "LOCALHOST:5088", Reference: "LOCALHOST:5088/proj/adapter@" + digest}
	for _, tt := range []struct{ name, installed, want string }{
		{"installed under the canonical name", "/etc/docker/certs.d/localhost:5088/ca.crt",
			"Docker Engine reads the CA for LOCALHOST:5088 from /etc/docker/certs.d/LOCALHOST:5088/ca.crt, not from /etc/docker/certs.d/localhost:5088/ca.crt"},
		{"none installed", "", "place the CA as /etc/docker/certs.d/LOCALHOST:5088/ca.crt, where Docker Engine reads it"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := explainCertificate(raw, tgt, "/etc/docker/certs.d", tt.installed)
			if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "REGISTRY=localhost:5088") {
				t.Errorf("error\n\t%v\nshould contain\n\t%s\nand the REGISTRY to rebuild with", err, tt.want)
			}
		})
	}
}

// TestEnsureInstallsCAUnderCanonicalHost: a CA is installed under the
// configured entry's host in canonical form, the folder Docker Engine reads,
// whatever spelling the pak chose (issue 11.5); a pak spelling that the
// engine looks up under another folder gets a warning naming both.
func TestEnsureInstallsCAUnderCanonicalHost(t *testing.T) {
	tests := []struct {
		name, entryHost, folder string
		paks                    map[string]string // REGISTRY -> reference repository part
		warnFor                 []string          // REGISTRY spellings the engine reads elsewhere
	}{
		{"localhost in any case", "localhost:5088", "localhost:5088",
			map[string]string{"localhost:5088": "proj/a", "LOCALHOST:5088": "proj/a", "LocalHost:5088": "proj/a"},
			[]string{"LOCALHOST:5088", "LocalHost:5088"}},
		{"entry written in upper case", "Harbor.Example:8443", "harbor.example:8443",
			map[string]string{"harbor.example:8443": "proj/a"}, nil},
		{"Docker Hub under every name", "registry.hub.docker.com", "docker.io",
			map[string]string{"docker.io": "user/a", "index.docker.io": "user/a", "user": "a", "registry.hub.docker.com": "user/a", "registry-1.docker.io": "user/a"},
			[]string{"registry.hub.docker.com", "registry-1.docker.io"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			certsDir := filepath.Join(t.TempDir(), "certs.d")
			entry := config.Registry{Host: tt.entryHost, CAFile: writeFile(t, t.TempDir(), "ca.pem", testCA(t))}
			for registry, repo := range tt.paks {
				img := pak.Image{File: "x.pak", Format: pak.FormatConf, AdapterKind: "A", ConfPath: "A.conf", Registry: registry, Repository: repo, Digest: digest}
				tgt, err := img.Resolve("")
				if err != nil {
					t.Fatal(err)
				}
				core, logs := observer.New(zap.WarnLevel)
				p := &Puller{
					Engine:      &fakeEngine{verifies: true},
					Credentials: &credentials.Resolver{Config: &config.Config{Registries: []config.Registry{entry}}, DockerConfigDir: t.TempDir()},
					Log:         zap.New(core),
					Backoff:     fastBackoff,
					CertsDir:    certsDir,
				}
				if r := p.Ensure(context.Background(), tgt, Options{}); r.Status != Pulled {
					t.Fatalf("REGISTRY=%s: status %s, err %v", registry, r.Status, r.Err)
				}
				warned := false
				for _, e := range logs.All() {
					if strings.Contains(e.Message, "Docker Engine reads the CA for it from "+filepath.Join(certsDir, registry)) {
						warned = true
					}
				}
				if want := slices.Contains(tt.warnFor, registry); warned != want {
					t.Errorf("REGISTRY=%s: warned about the engine's folder = %v, want %v (logs %v)", registry, warned, want, logs.All())
				}
			}
			entries, err := os.ReadDir(certsDir)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 1 || entries[0].Name() != tt.folder {
				var names []string
				for _, e := range entries {
					names = append(names, e.Name())
				}
				t.Fatalf("certs.d holds %q, want only %q", names, tt.folder)
			}
		})
	}
}

// TestEnsureDesktopTrust: with Docker Desktop's engine (Windows, macOS) a
// ca_file is never written anywhere; a warning and an untrusted
// certificate's error say how to trust the CA in that system's store, and
// the failure's cause keeps that advice whole.
func TestEnsureDesktopTrust(t *testing.T) {
	x509Err := fmt.Errorf("login: %w: x509: certificate signed by unknown authority", engine.ErrCertificate)
	for _, tt := range []struct{ goos, caFile, want string }{
		{"windows", `C:\Users\Admin\ca's.pem`, `import the CA of ca_file C:\Users\Admin\ca's.pem into Trusted Root Certification Authorities ` +
			`(PowerShell as administrator, Import-Certificate -FilePath 'C:\Users\Admin\ca''s.pem' -CertStoreLocation Cert:\LocalMachine\Root), then restart Docker Desktop`},
		{"darwin", "/Users/admin/My CA.pem", "add the CA of ca_file /Users/admin/My CA.pem to it " +
			"(sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain '/Users/admin/My CA.pem'), then restart Docker Desktop"},
		{"windows", "", "import the CA that signed it into Trusted Root Certification Authorities (PowerShell as administrator, Import-Certificate -FilePath 'CA.crt'"},
	} {
		t.Run(tt.goos+"/"+tt.caFile, func(t *testing.T) {
			entry := config.Registry{Host: target.Registry, Username: "robot$pull", PasswordEnv: "PW", CAFile: tt.caFile}
			certsDir := filepath.Join(t.TempDir(), "certs.d")
			core, logs := observer.New(zap.WarnLevel)
			p := &Puller{
				Engine:      &fakeEngine{verifies: true, loginErr: x509Err},
				Credentials: &credentials.Resolver{Config: &config.Config{Registries: []config.Registry{entry}}, DockerConfigDir: t.TempDir(), Getenv: func(string) string { return testPassword }},
				Log:         zap.New(core),
				Backoff:     fastBackoff,
				CertsDir:    certsDir,
				DesktopOS:   tt.goos,
			}
			r := p.Ensure(context.Background(), target, Options{})
			if r.Err == nil || !strings.Contains(r.Err.Error(), tt.want) || !errors.Is(r.Err, engine.ErrCertificate) {
				t.Errorf("error\n\t%v\nshould wrap engine.ErrCertificate and contain\n\t%s", r.Err, tt.want)
			}
			if c := Cause(r.Err); !strings.Contains(c, tt.want) {
				t.Errorf("cause %q lost the advice", c)
			}
			if _, err := os.Stat(certsDir); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("certs dir written for Docker Desktop: %v", err)
			}
			warned := len(logs.FilterMessageSnippet(tt.want).All()) == 1
			if warned != (tt.caFile != "") {
				t.Errorf("warned with the advice = %v, want %v (logs %v)", warned, tt.caFile != "", logs.All())
			}
		})
	}
	if DesktopTrust("linux", "/etc/ca.pem") != "" {
		t.Error("Linux has advice: its engine reads certs.d")
	}
}
