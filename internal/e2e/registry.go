//go:build linux

package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prepull/prepull/internal/pak/paktest"
	"github.com/prepull/prepull/internal/testenv"
)

// NewRegistryFixtureOn is newRegistryFixture for the engine eng. The image
// is pushed by the shared engine: eng only pulls.
func NewRegistryFixtureOn(t *testing.T, eng *testenv.DockerEngine, reg *testenv.Registry, repo, registries string) *Fixture {
	t.Helper()
	f := &Fixture{T: t, Dir: t.TempDir(), Password: reg.Password, Repo: repo, Reg: reg, Docker: eng}
	if f.Password == "" {
		f.Password = "unused-" + RandomWord(t) // still checked for in the output
	}
	f.Digest = testenv.Docker(t).PushImage(t, reg, repo, testenv.ImageOptions{})
	f.Ref = reg.Addr + "/" + repo + "@" + f.Digest
	f.Pak = paktest.Pak{Kind: "MyAdapter", Version: "1.0.0", Registry: reg.Addr, Repository: "/" + repo, Digest: f.Digest}.WriteFile(t, f.Dir)
	f.DockerConfigDir = filepath.Join(f.Dir, "docker")
	if err := os.MkdirAll(f.DockerConfigDir, 0o700); err != nil {
		t.Fatal(err)
	}
	f.WritePasswordFile(f.Password)
	f.Config = f.WriteConfig(registries)
	t.Cleanup(func() { f.checkSecretsUnwritten() })
	return f
}

// PulledOnce runs prepull on the fixture's pak and checks that it pulled
// the fixture's reference, with credentials from source (a prefix).
func (f *Fixture) PulledOnce(config, source string) {
	f.T.Helper()
	r := f.Prepull(nil, "--config", config, "--json", f.Pak)
	r.Want(f.T, 0)
	rs := r.Results(f.T)
	if len(rs) != 1 || rs[0].Status != "pulled" || rs[0].Reference != f.Ref {
		f.T.Fatalf("results = %+v, want one pulled %s", rs, f.Ref)
	}
	if !strings.HasPrefix(rs[0].CredentialSource, source) {
		f.T.Errorf("credential_source = %q, want %s", rs[0].CredentialSource, source)
	}
	if !f.Docker.HasImage(f.T, f.Ref) {
		f.T.Fatalf("engine does not hold %s after the pull", f.Ref)
	}
}

// TlsFiles are a private CA and a server certificate it signed, as PEM files.
type TlsFiles struct {
	CAPEM     []byte
	CA        string // the CA certificate
	Cert, Key string // the server's certificate and key
}

// NewTLSFiles makes a CA and, signed by it, a certificate for the IP
// address ip, in a temporary folder of t.
func NewTLSFiles(t *testing.T, ip string) TlsFiles {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "prepull e2e private CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: ip},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.ParseIP(ip)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	tf := TlsFiles{
		CAPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		CA:    filepath.Join(dir, "registry-ca.pem"),
		Cert:  filepath.Join(dir, "server.crt"),
		Key:   filepath.Join(dir, "server.key"),
	}
	for path, data := range map[string][]byte{
		tf.CA:   tf.CAPEM,
		tf.Cert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		tf.Key:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return tf
}
