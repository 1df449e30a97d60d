//go:build linux

package testenv_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/prepull/prepull/internal/testenv"
	"github.com/prepull/prepull/internal/testenv/await"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// manifestLayers fetches repo@digest from reg's HTTP API as user:password
// (none when user is empty) and returns the HTTP status and the number of
// layers of the manifest.
func manifestLayers(t *testing.T, reg *testenv.Registry, user, password, repo, digest string) (int, int) {
	t.Helper()
	req, err := http.NewRequest("GET", "http://"+reg.Addr+"/v2/"+repo+"/manifests/"+digest, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/vnd.docker.distribution.manifest.v2+json")
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, 0
	}
	if got := resp.Header.Get("Docker-Content-Digest"); got != digest {
		t.Errorf("Docker-Content-Digest = %q, want %q", got, digest)
	}
	var m struct {
		Layers []json.RawMessage `json:"layers"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatalf("decode manifest: %v", err)
	}
	return resp.StatusCode, len(m.Layers)
}

func answers(addr string) bool {
	client := &http.Client{Timeout: time.Second}
	resp, err := client.Get("http://" + addr + "/v2/")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return true
}

func TestDockerRegistryPush(t *testing.T) {
	testenv.Require(t)

	start := time.Now()
	d := testenv.Docker(t)
	t.Logf("docker start: %v", time.Since(start))
	if got := d.Run(t, "version", "--format", "{{.Server.Version}}"); got == "" {
		t.Fatal("docker version printed no server version")
	}

	start = time.Now()
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{User: "alice", Password: "s3cret"})
	t.Logf("registry start: %v", time.Since(start))

	const repo = "proj/sub/adapter"
	start = time.Now()
	digest := d.PushImage(t, reg, repo, testenv.ImageOptions{})
	t.Logf("push (1 layer, 100 KiB): %v", time.Since(start))
	if !digestRE.MatchString(digest) {
		t.Fatalf("digest %q is not sha256:<64 hex>", digest)
	}
	ref := reg.Addr + "/" + repo + "@" + digest
	if d.HasImage(t, ref) {
		t.Fatalf("%s is still present locally after PushImage", ref)
	}

	if status, _ := manifestLayers(t, reg, "", "", repo, digest); status != http.StatusUnauthorized {
		t.Errorf("anonymous manifest GET: status %d, want 401", status)
	}
	if status, _ := manifestLayers(t, reg, "alice", "wrong", repo, digest); status != http.StatusUnauthorized {
		t.Errorf("manifest GET with a wrong password: status %d, want 401", status)
	}
	if status, layers := manifestLayers(t, reg, "alice", "s3cret", repo, digest); status != http.StatusOK || layers != 1 {
		t.Errorf("manifest GET: status %d, %d layers; want 200, 1 layer", status, layers)
	}

	// The engine pulls it by digest over plain HTTP with the login.
	config := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte("alice:s3cret"))
	cfg := `{"auths":{"` + reg.Addr + `":{"auth":"` + auth + `"}}}`
	if err := os.WriteFile(filepath.Join(config, "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	d.Run(t, "--config", config, "pull", ref)
	if !d.HasImage(t, ref) {
		t.Fatalf("%s missing after docker pull", ref)
	}
	d.RemoveImage(t, ref)
	if d.HasImage(t, ref) {
		t.Fatalf("%s still present after RemoveImage", ref)
	}
	d.RemoveImage(t, ref) // removing an absent image is not an error

	start = time.Now()
	multi := d.PushImage(t, reg, "proj/multi", testenv.ImageOptions{Layers: 3, Tag: "v3"})
	t.Logf("push (3 layers, 100 KiB): %v", time.Since(start))
	if status, layers := manifestLayers(t, reg, "alice", "s3cret", "proj/multi", multi); status != http.StatusOK || layers != 3 {
		t.Errorf("multi-layer manifest GET: status %d, %d layers; want 200, 3 layers", status, layers)
	}

	// Down, then back with the same content.
	reg.Stop(t)
	if answers(reg.Addr) {
		t.Fatalf("registry %s still answers after Stop", reg.Addr)
	}
	reg.Start(t)
	if status, _ := manifestLayers(t, reg, "alice", "s3cret", repo, digest); status != http.StatusOK {
		t.Errorf("manifest GET after Start: status %d, want 200", status)
	}

	// Down, back by itself a second later.
	reg.Stop(t)
	start = time.Now()
	reg.StartAfter(t, time.Second)
	if !await.Until(t, 50*time.Millisecond, func() bool { return answers(reg.Addr) }) {
		t.Fatal("registry did not come back after StartAfter")
	}
	if since := time.Since(start); since < time.Second {
		t.Errorf("registry answered %v after StartAfter(1s)", since)
	}
}

func TestRegistryAnonymousAndSharedStorage(t *testing.T) {
	d := testenv.Docker(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	digest := d.PushImage(t, reg, "open/image", testenv.ImageOptions{Size: 4 << 10})
	if status, layers := manifestLayers(t, reg, "", "", "open/image", digest); status != http.StatusOK || layers != 1 {
		t.Errorf("anonymous manifest GET: status %d, %d layers; want 200, 1 layer", status, layers)
	}

	// A second registry on the same storage, with a login, serves the same image.
	locked := testenv.StartRegistry(t, testenv.RegistryOptions{User: "bob", Password: "pw", Storage: reg.Storage})
	if locked.Addr == reg.Addr {
		t.Fatalf("two registries on one address %s", reg.Addr)
	}
	if status, _ := manifestLayers(t, locked, "bob", "pw", "open/image", digest); status != http.StatusOK {
		t.Errorf("manifest GET on shared storage: status %d, want 200", status)
	}
}

func TestDockerRestart(t *testing.T) {
	d := testenv.Docker(t)
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	digest := d.PushImage(t, reg, "keep/me", testenv.ImageOptions{Size: 4 << 10})
	ref := reg.Addr + "/keep/me@" + digest
	d.Run(t, "pull", ref)

	start := time.Now()
	d.Restart(t)
	t.Logf("docker restart: %v", time.Since(start))
	if !d.HasImage(t, ref) {
		t.Fatalf("%s lost across Restart", ref)
	}

	d.Stop(t)
	// Docker starts a stopped engine again for the next user.
	if d2 := testenv.Docker(t); d2 != d || !d.HasImage(t, ref) {
		t.Fatal("Docker did not bring the stopped engine back")
	}
}

func TestFreePort(t *testing.T) {
	if p := testenv.FreePort(t); p <= 0 || p > 65535 {
		t.Fatalf("FreePort = %d", p)
	}
}
