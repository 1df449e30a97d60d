package mirror

import (
	"context"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/prepull/prepull/internal/config"
	"github.com/prepull/prepull/internal/credentials"
	"github.com/prepull/prepull/internal/engine"
	"github.com/prepull/prepull/internal/pak"
	"github.com/prepull/prepull/internal/pull"
	"github.com/prepull/prepull/internal/registrytest"
)

// logins answers one login for every registry.
type logins struct{}

func (logins) For(context.Context, string) (credentials.Credential, error) {
	return credentials.Credential{Username: "pusher", Password: "topsecret-push"}, nil
}

// counted serves h and counts the requests that reach it, and those that
// carry a login.
type counted struct {
	h              http.Handler
	requests, auth atomic.Int32
}

func (c *counted) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.requests.Add(1)
	if r.Header.Get("Authorization") != "" {
		c.auth.Add(1)
	}
	c.h.ServeHTTP(w, r)
}

// sourceWithImage starts a TLS registry holding one random image and
// returns it, the image's target, and a ca_file trusting its certificate.
// Every httptest TLS server presents that same certificate: another one
// stands for a host whose certificate the source's private CA signed.
func sourceWithImage(t *testing.T, h http.Handler) (*httptest.Server, pak.Target, string) {
	t.Helper()
	src := httptest.NewTLSServer(h)
	t.Cleanup(src.Close)
	host := strings.TrimPrefix(src.URL, "https://")
	d := registrytest.Push(t, host+"/vendor/app:v1", registrytest.Image(t, 256, 2, ""), remote.WithTransport(src.Client().Transport))
	ca := filepath.Join(t.TempDir(), "source-ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: src.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	target := pak.Target{Image: pak.Image{Repository: "vendor/app", Digest: d.String()}, Registry: host, Reference: host + "/vendor/app@" + d.String()}
	return src, target, ca
}

// TestMirrorTrustsEachCAForItsHostOnly: a source's ca_file must not make
// prepull trust a destination whose certificate that CA signed (it would
// receive the push login), nor a host a blob download is redirected to.
func TestMirrorTrustsEachCAForItsHostOnly(t *testing.T) {
	t.Run("destination", func(t *testing.T) {
		src, target, ca := sourceWithImage(t, registry.New())
		dst := &counted{h: registry.New()}
		dstServer := httptest.NewTLSServer(dst)
		defer dstServer.Close()
		c := &Copier{Credentials: logins{}, Config: &config.Config{Registries: []config.Registry{{Host: target.Registry, CAFile: ca}}}}
		to, err := Destination(strings.TrimPrefix(dstServer.URL, "https://"), target)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Copy(context.Background(), target, to)
		if err == nil || dst.auth.Load() > 0 {
			t.Fatalf("copy from %s: %v; the destination, trusted through the source's CA, got %d requests, %d with the push login", src.URL, err, dst.requests.Load(), dst.auth.Load())
		}
	})
	t.Run("redirected blob", func(t *testing.T) {
		storage := &counted{}
		storageServer := httptest.NewTLSServer(storage)
		defer storageServer.Close()
		reg := registry.New()
		storage.h = reg
		// The source sends every blob download to the object storage.
		redirecting := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/sha256:") && r.Header.Get("X-Pushed") == "" {
				http.Redirect(w, r, storageServer.URL+r.URL.Path, http.StatusTemporaryRedirect)
				return
			}
			reg.ServeHTTP(w, r)
		})
		_, target, ca := sourceWithImage(t, redirecting)
		dst := httptest.NewServer(registry.New()) // plain HTTP: loopback
		defer dst.Close()
		c := &Copier{Credentials: logins{}, Config: &config.Config{Registries: []config.Registry{{Host: target.Registry, CAFile: ca}}}}
		to, err := Destination(strings.TrimPrefix(dst.URL, "http://"), target)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Copy(context.Background(), target, to)
		if err == nil || storage.requests.Load() > 0 {
			t.Fatalf("copy: %v; the redirected-to host, trusted through the source's CA, got %d requests", err, storage.requests.Load())
		}
	})
}

// sourced answers one login, from the configuration, for every registry.
type sourced struct{}

func (sourced) For(context.Context, string) (credentials.Credential, error) {
	return credentials.Credential{Username: "robot", Password: "topsecret-blob", Source: "config"}, nil
}

// TestFetchBlobRefusalNamesTheUser: a registry that refuses a blob download
// of a bundle export is answered, as every other refusal, with the user and
// where the login came from, never the password.
func TestFetchBlobRefusalNamesTheUser(t *testing.T) {
	reg := registry.New()
	src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/sha256:") {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`))
			return
		}
		reg.ServeHTTP(w, r)
	}))
	defer src.Close()
	host := strings.TrimPrefix(src.URL, "http://")
	img := registrytest.Image(t, 256, 1, "")
	registrytest.Push(t, host+"/vendor/app:v1", img)
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	d, err := layers[0].Digest()
	if err != nil {
		t.Fatal(err)
	}
	repo, err := name.NewRepository(host+"/vendor/app", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	c := &Copier{Credentials: sourced{}}
	opts, err := c.options(context.Background(), host)
	if err != nil {
		t.Fatal(err)
	}
	err = c.fetchBlob(context.Background(), repo, v1.Descriptor{Digest: d, Size: 256}, t.TempDir(), opts, &Counter{})
	var login *pull.LoginError
	if !errors.As(err, &login) || login.Username != "robot" || login.Source != "config" || !errors.Is(err, engine.ErrUnauthorized) {
		t.Fatalf("fetchBlob: %v; want a refusal naming user robot and the configuration", err)
	}
	if strings.Contains(err.Error(), "topsecret-blob") {
		t.Errorf("the error shows the password: %v", err)
	}
}
