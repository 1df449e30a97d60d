//go:build linux

package testenv

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// This file pushes images of other platforms than the host's, and image
// indexes, straight through the registry's HTTP API: the Docker Engine
// cannot load an image of another platform and push it as such, and
// docker 20.10 has no way to push an index. The engine under test only ever
// pulls them, never runs them.

// Media types as the classic builder and buildx push them.
const (
	mediaDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	mediaDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
	mediaDockerConfig   = "application/vnd.docker.container.image.v1+json"
	mediaDockerLayer    = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	mediaOCIManifest    = "application/vnd.oci.image.manifest.v1+json"
	mediaOCIIndex       = "application/vnd.oci.image.index.v1+json"
	mediaOCIConfig      = "application/vnd.oci.image.config.v1+json"
	mediaOCILayer       = "application/vnd.oci.image.layer.v1.tar+gzip"
	mediaInToto         = "application/vnd.in-toto+json"
)

// IndexOptions shape the index that PushIndex makes.
type IndexOptions struct {
	// Platforms are the images of the index, "os/arch" or "os/arch/variant"
	// each, e.g. "linux/amd64", "linux/arm64".
	Platforms []string
	// Attestations adds, for each image, an attestation manifest the way
	// buildx pushes its provenance: an entry of platform unknown/unknown
	// whose vnd.docker.reference.type annotation is "attestation-manifest".
	// buildx then writes an OCI index of OCI manifests; without attestations
	// it writes a Docker manifest list of Docker manifests, as here.
	Attestations bool
	// Tag is pushed along with the index; "latest" when empty.
	Tag string
}

// PushPlatformImage pushes to reg, as repo:tag ("latest" when tag is
// empty), a one-layer image of new random content for platform ("linux/arm64",
// "os/arch[/variant]") with a Docker schema 2 manifest: what the classic
// builder (docker-py, the SDK's mp-build) pushes on a machine of that
// platform, e.g. linux/arm64 from an Apple Silicon Mac. It returns the
// manifest's digest. It needs no engine.
func PushPlatformImage(t testing.TB, reg *Registry, repo, platform, tag string) string {
	t.Helper()
	p := newPusher(t, reg, repo)
	m := p.image(platform, false)
	return p.manifest(m, mediaDockerManifest, tagOr(tag))
}

// PushIndex pushes to reg, as repo:opts.Tag, an index of one new image per
// platform of opts.Platforms, each as PushPlatformImage makes it, with
// attestation manifests when opts.Attestations is set, and returns the
// index's digest. It needs no engine.
func PushIndex(t testing.TB, reg *Registry, repo string, opts IndexOptions) string {
	t.Helper()
	if len(opts.Platforms) == 0 {
		t.Fatal("testenv: PushIndex: no platforms")
	}
	p := newPusher(t, reg, repo)
	manifestType, indexType := mediaDockerManifest, mediaDockerList
	if opts.Attestations {
		manifestType, indexType = mediaOCIManifest, mediaOCIIndex
	}
	var entries, attestations []map[string]any
	for _, platform := range opts.Platforms {
		m := p.image(platform, opts.Attestations)
		d := p.manifest(m, manifestType, "")
		entries = append(entries, map[string]any{
			"mediaType": manifestType, "digest": d, "size": len(m),
			"platform": platformJSON(t, platform),
		})
		if opts.Attestations {
			a := p.attestation(d)
			attestations = append(attestations, map[string]any{
				"mediaType": mediaOCIManifest, "digest": p.manifest(a, mediaOCIManifest, ""), "size": len(a),
				"annotations": map[string]string{
					"vnd.docker.reference.digest": d,
					"vnd.docker.reference.type":   "attestation-manifest",
				},
				"platform": map[string]string{"architecture": "unknown", "os": "unknown"},
			})
		}
	}
	index := mustJSON(t, map[string]any{
		"schemaVersion": 2,
		"mediaType":     indexType,
		"manifests":     append(entries, attestations...),
	})
	return p.manifest(index, indexType, tagOr(opts.Tag))
}

func tagOr(tag string) string {
	if tag == "" {
		return "latest"
	}
	return tag
}

// platformJSON is platform ("os/arch[/variant]") as an image config or an
// index entry writes it.
func platformJSON(t testing.TB, platform string) map[string]string {
	t.Helper()
	parts := strings.Split(platform, "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		t.Fatalf("testenv: platform %q: want os/arch or os/arch/variant", platform)
	}
	p := map[string]string{"os": parts[0], "architecture": parts[1]}
	if len(parts) == 3 {
		p["variant"] = parts[2]
	}
	return p
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return b
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// pusher pushes blobs and manifests to one repository of a registry, with
// the registry's login: Basic for htpasswd, a token from the realm for the
// Bearer scheme.
type pusher struct {
	t      testing.TB
	reg    *Registry
	repo   string
	base   *url.URL
	client *http.Client
	auth   string // the Authorization header that worked, once one did
}

func newPusher(t testing.TB, reg *Registry, repo string) *pusher {
	t.Helper()
	client := &http.Client{Timeout: 30 * time.Second}
	if reg.scheme == "https" {
		// The harness pushes; whether clients trust the registry is what
		// the tests check, through the engine.
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	}
	t.Cleanup(client.CloseIdleConnections)
	return &pusher{t: t, reg: reg, repo: repo, base: &url.URL{Scheme: reg.scheme, Host: reg.Addr}, client: client}
}

// image pushes the config and layer of a new one-layer image for platform
// and returns its manifest, not yet pushed: OCI media types when oci is set,
// Docker's otherwise.
func (p *pusher) image(platform string, oci bool) []byte {
	p.t.Helper()
	created := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	layer, err := layerTar("layer1", 4<<10, created)
	if err != nil {
		p.t.Fatalf("testenv: %v", err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	if _, err := zw.Write(layer); err != nil {
		p.t.Fatalf("testenv: %v", err)
	}
	if err := zw.Close(); err != nil {
		p.t.Fatalf("testenv: %v", err)
	}
	config := map[string]any{
		"created": created.Format(time.RFC3339),
		"config":  map[string]any{},
		"rootfs":  map[string]any{"type": "layers", "diff_ids": []string{digestOf(layer)}},
		"history": []map[string]string{{"created": created.Format(time.RFC3339), "created_by": "testenv " + platform}},
	}
	for k, v := range platformJSON(p.t, platform) {
		config[k] = v
	}
	configType, layerType, manifestType := mediaDockerConfig, mediaDockerLayer, mediaDockerManifest
	if oci {
		configType, layerType, manifestType = mediaOCIConfig, mediaOCILayer, mediaOCIManifest
	}
	return p.manifestOf(manifestType, configType, mustJSON(p.t, config), layerType, gz.Bytes(), nil)
}

// attestation pushes the blobs of a provenance attestation of the image
// whose manifest digest is subject, as buildx makes one, and returns its
// manifest, not yet pushed.
func (p *pusher) attestation(subject string) []byte {
	p.t.Helper()
	statement := mustJSON(p.t, map[string]any{
		"_type":         "https://in-toto.io/Statement/v0.1",
		"predicateType": "https://slsa.dev/provenance/v0.2",
		"subject":       []map[string]any{{"name": "pkg:docker/testenv", "digest": map[string]string{"sha256": strings.TrimPrefix(subject, "sha256:")}}},
		"predicate":     map[string]any{"builder": map[string]string{"id": "testenv"}},
	})
	config := mustJSON(p.t, map[string]any{
		"architecture": "unknown", "os": "unknown", "config": map[string]any{},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{digestOf(statement)}},
	})
	return p.manifestOf(mediaOCIManifest, mediaOCIConfig, config, mediaInToto, statement,
		map[string]string{"in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2"})
}

// manifestOf pushes config and layer as blobs and returns the manifest that
// names them.
func (p *pusher) manifestOf(manifestType, configType string, config []byte, layerType string, layer []byte, layerAnnotations map[string]string) []byte {
	p.t.Helper()
	p.blob(config)
	p.blob(layer)
	l := map[string]any{"mediaType": layerType, "digest": digestOf(layer), "size": len(layer)}
	if layerAnnotations != nil {
		l["annotations"] = layerAnnotations
	}
	return mustJSON(p.t, map[string]any{
		"schemaVersion": 2,
		"mediaType":     manifestType,
		"config":        map[string]any{"mediaType": configType, "digest": digestOf(config), "size": len(config)},
		"layers":        []map[string]any{l},
	})
}

// blob uploads b in one monolithic PUT.
func (p *pusher) blob(b []byte) {
	p.t.Helper()
	resp := p.do(http.MethodPost, p.base.JoinPath("/v2", p.repo, "blobs/uploads/"), "", nil, http.StatusAccepted)
	loc, err := p.base.Parse(resp.Header.Get("Location"))
	if err != nil {
		p.t.Fatalf("testenv: upload location: %v", err)
	}
	q := loc.Query()
	q.Set("digest", digestOf(b))
	loc.RawQuery = q.Encode()
	p.do(http.MethodPut, loc, "application/octet-stream", b, http.StatusCreated)
}

// manifest pushes m by its digest, or as tag when tag is set, and returns
// its digest.
func (p *pusher) manifest(m []byte, mediaType, tag string) string {
	p.t.Helper()
	d := digestOf(m)
	name := d
	if tag != "" {
		name = tag
	}
	resp := p.do(http.MethodPut, p.base.JoinPath("/v2", p.repo, "manifests", name), mediaType, m, http.StatusCreated)
	if got := resp.Header.Get("Docker-Content-Digest"); got != "" && got != d {
		p.t.Fatalf("testenv: the registry stored %s as %s, not %s", p.repo, got, d)
	}
	return d
}

// do sends one request, logging in when the registry asks for it, and fails
// the test unless the answer is want.
func (p *pusher) do(method string, u *url.URL, contentType string, body []byte, want int) *http.Response {
	p.t.Helper()
	for try := 0; ; try++ {
		req, err := http.NewRequest(method, u.String(), bytes.NewReader(body))
		if err != nil {
			p.t.Fatalf("testenv: %v", err)
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		if p.auth != "" {
			req.Header.Set("Authorization", p.auth)
		}
		resp, err := p.client.Do(req)
		if err != nil {
			p.t.Fatalf("testenv: %s %s: %v", method, u.Path, err)
		}
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		resp.Body.Close()
		switch {
		case resp.StatusCode == want:
			return resp
		case resp.StatusCode == http.StatusUnauthorized && try == 0 && p.reg.User != "":
			p.login(resp.Header.Get("WWW-Authenticate"))
			continue
		}
		p.t.Fatalf("testenv: %s %s: %s: %s", method, u.Path, resp.Status, msg)
	}
}

// login sets the Authorization header that the challenge asks for.
func (p *pusher) login(challenge string) {
	p.t.Helper()
	scheme, params, _ := strings.Cut(challenge, " ")
	switch strings.ToLower(scheme) {
	case "basic":
		req, _ := http.NewRequest(http.MethodGet, "/", nil)
		req.SetBasicAuth(p.reg.User, p.reg.Password)
		p.auth = req.Header.Get("Authorization")
		return
	case "bearer":
	default:
		p.t.Fatalf("testenv: the registry asks for %q, which the pusher does not speak", challenge)
	}
	attrs := map[string]string{}
	for _, kv := range strings.Split(params, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		attrs[k] = strings.Trim(v, `"`)
	}
	realm, err := url.Parse(attrs["realm"])
	if err != nil || attrs["realm"] == "" {
		p.t.Fatalf("testenv: token realm in %q: %v", challenge, err)
	}
	q := realm.Query()
	q.Set("service", attrs["service"])
	q.Set("scope", "repository:"+p.repo+":pull,push")
	realm.RawQuery = q.Encode()
	req, err := http.NewRequest(http.MethodGet, realm.String(), nil)
	if err != nil {
		p.t.Fatalf("testenv: %v", err)
	}
	req.SetBasicAuth(p.reg.User, p.reg.Password)
	resp, err := p.client.Do(req)
	if err != nil {
		p.t.Fatalf("testenv: token: %v", err)
	}
	defer resp.Body.Close()
	var tok struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
	}
	if resp.StatusCode != http.StatusOK {
		p.t.Fatalf("testenv: token: %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil {
		p.t.Fatalf("testenv: token: %v", err)
	}
	p.auth = "Bearer " + tok.Token
	if tok.Token == "" {
		p.auth = "Bearer " + tok.AccessToken
	}
}
