//go:build linux

package testenv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// TokenServer is a registry token server as the Docker token authentication
// specification describes it (the Bearer scheme of Harbor and most
// enterprise registries): the registry answers 401 with
//
//	WWW-Authenticate: Bearer realm="<Realm>",service="<Service>",scope="repository:proj/x:pull"
//
// the client asks the realm for a token with its login (GET with Basic auth,
// or POST with grant_type=password), and presents the token to the
// registry. It grants pull and push on every repository to its one user,
// and signs tokens with a P-256 key (ES256) that the registry trusts through
// rootcertbundle, matched by the key ID (kid) the way distribution 2.8 finds
// it: the libtrust fingerprint of the key.
type TokenServer struct {
	// Realm is the token endpoint, "http://127.0.0.1:PORT/token".
	Realm string
	// Service and Issuer are the service and issuer names the registry
	// checks in each token.
	Service string
	Issuer  string
	// CertBundle is a PEM file with the certificate of the signing key, for
	// the registry's rootcertbundle.
	CertBundle string

	user, password string
	key            *ecdsa.PrivateKey
	kid            string

	mu     sync.Mutex
	grants []TokenGrant
}

// TokenGrant is one token the server issued.
type TokenGrant struct {
	// Account is the user the token was issued to.
	Account string
	// Scopes are the granted scopes, e.g. "repository:proj/x:pull,push".
	Scopes []string
}

// tokenLifetime is how long an issued token is valid.
const tokenLifetime = 5 * time.Minute

// StartTokenServer starts a token server on a free port of 127.0.0.1 for
// the login user, password, and stops it when t ends. Its files go to dir.
func StartTokenServer(t testing.TB, dir, user, password string) *TokenServer {
	t.Helper()
	if user == "" {
		t.Fatal("testenv: a token server needs a user")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("testenv: token signing key: %v", err)
	}
	kid, err := libtrustKeyID(&key.PublicKey)
	if err != nil {
		t.Fatalf("testenv: token signing key: %v", err)
	}
	ts := &TokenServer{
		Service:    "testenv-registry",
		Issuer:     "testenv-token-server",
		CertBundle: filepath.Join(dir, "token-signer.crt"),
		user:       user,
		password:   password,
		key:        key,
		kid:        kid,
	}
	if err := writeSignerCert(ts.CertBundle, key); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: token server: %v", err)
	}
	ts.Realm = "http://" + l.Addr().String() + "/token"
	mux := http.NewServeMux()
	mux.HandleFunc("/token", ts.serveToken)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ts
}

// Grants returns the tokens issued so far.
func (ts *TokenServer) Grants() []TokenGrant {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return slices.Clone(ts.grants)
}

// serveToken answers a token request: GET with Basic auth and scope and
// service parameters, or the OAuth2 POST with grant_type=password.
func (ts *TokenServer) serveToken(w http.ResponseWriter, r *http.Request) {
	var user, password string
	var ok bool
	var scopes []string
	switch r.Method {
	case http.MethodGet:
		user, password, ok = r.BasicAuth()
		scopes = r.URL.Query()["scope"]
	case http.MethodPost:
		if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "password" {
			tokenError(w, http.StatusBadRequest, "UNSUPPORTED", "only grant_type=password is supported")
			return
		}
		user, password, ok = r.PostForm.Get("username"), r.PostForm.Get("password"), true
		scopes = r.PostForm["scope"]
	default:
		tokenError(w, http.StatusMethodNotAllowed, "UNSUPPORTED", "GET or POST")
		return
	}
	if !ok || user != ts.user || password != ts.password {
		w.Header().Set("WWW-Authenticate", `Basic realm="testenv token server"`)
		tokenError(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
		return
	}
	if s := r.FormValue("service"); s != "" && s != ts.Service {
		tokenError(w, http.StatusBadRequest, "DENIED", "unknown service "+s)
		return
	}
	access, granted := grant(scopes)
	now := time.Now()
	token, err := ts.sign(map[string]any{
		"iss":    ts.Issuer,
		"sub":    user,
		"aud":    ts.Service,
		"exp":    now.Add(tokenLifetime).Unix(),
		"nbf":    now.Unix(),
		"iat":    now.Unix(),
		"jti":    rand.Text(),
		"access": access,
	})
	if err != nil {
		tokenError(w, http.StatusInternalServerError, "UNKNOWN", err.Error())
		return
	}
	ts.mu.Lock()
	ts.grants = append(ts.grants, TokenGrant{Account: user, Scopes: granted})
	ts.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"token":        token,
		"access_token": token,
		"expires_in":   int(tokenLifetime.Seconds()),
		"issued_at":    now.UTC().Format(time.RFC3339),
	})
}

// grant turns requested scopes ("repository:NAME:ACTIONS") into the
// token's access claim, keeping pull and push on repositories only.
func grant(scopes []string) (access []map[string]any, granted []string) {
	access = []map[string]any{}
	for _, field := range scopes {
		for _, scope := range strings.Fields(field) {
			parts := strings.Split(scope, ":")
			if len(parts) < 3 || parts[0] != "repository" {
				continue
			}
			name := strings.Join(parts[1:len(parts)-1], ":")
			var actions []string
			for _, a := range strings.Split(parts[len(parts)-1], ",") {
				if (a == "pull" || a == "push") && !slices.Contains(actions, a) {
					actions = append(actions, a)
				}
			}
			if len(actions) == 0 {
				continue
			}
			access = append(access, map[string]any{"type": "repository", "name": name, "actions": actions})
			granted = append(granted, "repository:"+name+":"+strings.Join(actions, ","))
		}
	}
	return access, granted
}

// sign returns the claims as a JWT signed with ES256, naming the key by its
// libtrust key ID.
func (ts *TokenServer) sign(claims map[string]any) (string, error) {
	header, err := json.Marshal(map[string]string{"typ": "JWT", "alg": "ES256", "kid": ts.kid})
	if err != nil {
		return "", err
	}
	body, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	signed := enc.EncodeToString(header) + "." + enc.EncodeToString(body)
	sum := sha256.Sum256([]byte(signed))
	r, s, err := ecdsa.Sign(rand.Reader, ts.key, sum[:])
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	// JWS ES256: R and S as 32-byte big-endian numbers, concatenated.
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return signed + "." + enc.EncodeToString(sig), nil
}

// libtrustKeyID returns the key ID that github.com/docker/libtrust gives a
// public key, and that distribution 2.8 looks trusted keys up by: the
// SHA-256 of the key's PKIX DER encoding, truncated to 240 bits, in base32
// without padding, in groups of four joined by colons.
func libtrustKeyID(pub any) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(der)
	s := strings.TrimRight(base32.StdEncoding.EncodeToString(sum[:30]), "=")
	var groups []string
	for len(s) > 4 {
		groups = append(groups, s[:4])
		s = s[4:]
	}
	return strings.Join(append(groups, s), ":"), nil
}

// writeSignerCert writes a self-signed certificate for key to path as PEM.
func writeSignerCert(path string, key *ecdsa.PrivateKey) error {
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "testenv token signer"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("token signer certificate: %w", err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return fmt.Errorf("token signer certificate: %w", err)
	}
	return nil
}

// tokenError writes an error in the registry's errors format, which the
// Docker client turns into "unauthorized: authentication required".
func tokenError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"code": code, "message": msg}}})
}
