//go:build linux

package testenv

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prepull/prepull/internal/testenv/await"
)

// DockerEngine is a dockerd of its own, shared by all tests of one test
// binary, listening on a unix socket in a directory under /tmp. Tests that
// stop or restart it must not run in parallel with other tests that use it.
type DockerEngine struct {
	// Host is the engine's address for DOCKER_HOST, "unix:///tmp/…/docker.sock".
	Host string
	// Dir holds the engine's data root, exec root, socket and log.
	Dir string

	dataRoot string // Dir/data, or a small disk's (StartDocker)

	sock      string
	cliConfig string // DOCKER_CONFIG of Run: the harness's own, never ~/.docker
	cliPath   string // PATH of the CLI: an empty directory, so no credential helper is found
	dockerd   string
	cli       string

	daemonJSON string          // the engine's --config-file, rewritten by UseMirror
	features   map[string]bool // daemon.json's "features", kept by every rewrite

	service
}

var (
	dockerOnce sync.Once
	dockerMu   sync.Mutex // guards dockerEng
	dockerEng  *DockerEngine
	dockerErr  error
)

// Docker returns the test binary's Docker Engine, starting it on first use
// and again if an earlier test left it stopped. It calls Require.
func Docker(t testing.TB) *DockerEngine {
	t.Helper()
	Require(t)
	dir := workDir(t)
	dockerOnce.Do(func() {
		d, err := newDocker(filepath.Join(dir, "docker"), "", DockerOptions{}, "")
		if err == nil {
			err = d.start(await.Limit(t))
		}
		dockerMu.Lock()
		dockerEng, dockerErr = d, err
		dockerMu.Unlock()
	})
	if dockerErr != nil {
		t.Fatalf("testenv: start the Docker Engine: %v", dockerErr)
	}
	d := dockerEng
	if !d.running() {
		d.Start(t)
	}
	return d
}

// startedDocker returns the engine if Docker made one.
func startedDocker() *DockerEngine {
	dockerMu.Lock()
	defer dockerMu.Unlock()
	return dockerEng
}

// newDocker prepares the engine's directory and command line: the host's
// dockerd, or, when opts.Suite is set, the dockerd of root (that suite's
// Rootfs) in systemd-nspawn. The data root is dataRoot, or dir/data when
// dataRoot is empty.
func newDocker(dir, dataRoot string, opts DockerOptions, root string) (*DockerEngine, error) {
	dockerd, err := partDockerd.path()
	if err != nil {
		return nil, err
	}
	cli, err := partDocker.path()
	if err != nil {
		return nil, err
	}
	d := &DockerEngine{
		Dir:       dir,
		dataRoot:  dataRoot,
		sock:      filepath.Join(dir, "docker.sock"),
		cliConfig: filepath.Join(dir, "cli"),
		dockerd:   dockerd,
		cli:       cli,
	}
	d.Host = "unix://" + d.sock
	d.service = service{
		name:    "dockerd",
		logPath: filepath.Join(dir, "dockerd.log"),
		env:     cleanEnv([]string{"DOCKER_", "CONTAINERD_"}),
		probe:   d.ping,
		grace:   30 * time.Second,
		// A killed dockerd leaves its socket and its data-root mount behind.
		before: func() {
			unmountUnder(d.dataRoot)
			_ = os.Remove(d.sock)
		},
		after: func() { unmountUnder(d.dataRoot) },
	}
	if d.dataRoot == "" {
		d.dataRoot = filepath.Join(dir, "data")
	}
	execRoot := filepath.Join(dir, "exec")
	// containerd's sockets are the longest paths under the exec root.
	if n := len(filepath.Join(execRoot, "containerd", "containerd.sock.ttrpc")); n >= 108 {
		return nil, fmt.Errorf("socket paths under %s would be %d bytes, over the 107 a unix socket allows", dir, n)
	}
	for _, sub := range []string{d.dataRoot, execRoot, d.cliConfig} {
		if err := os.MkdirAll(sub, 0o700); err != nil {
			return nil, fmt.Errorf("make engine directory: %w", err)
		}
	}
	flags := []string{
		"--storage-driver=vfs",
		"--iptables=false", "--ip6tables=false", "--bridge=none",
		// The host's net.ipv4.ip_forward is not the tests' to change, and
		// inside nspawn /proc/sys is read-only: with no bridge nothing needs it.
		"--ip-forward=false",
	}
	switch {
	case opts.ContainerdStore:
		// daemon.json, not --feature, which came after 26.1.
		d.features = map[string]bool{"containerd-snapshotter": true}
		flags[0] = "--storage-driver=native" // the snapshotter's name
	case opts.Suite != "":
		// Said, not left to a default: a moving suite's newer release may
		// make the containerd store the default (Docker 29 does).
		d.features = map[string]bool{"containerd-snapshotter": false}
	}
	// Our own daemon.json keeps /etc/docker/daemon.json out of the tests.
	daemonJSON := filepath.Join(dir, "daemon.json")
	d.daemonJSON = daemonJSON
	if err := d.writeDaemonJSON(nil); err != nil {
		return nil, err
	}
	if opts.Suite != "" {
		d.argv, err = nspawnDockerd(d, root, flags)
		return d, err
	}
	ns := "prepull-" + filepath.Base(filepath.Dir(dir))
	d.argv = append([]string{dockerd,
		"--config-file", daemonJSON,
		"--data-root", d.dataRoot,
		"--exec-root", execRoot,
		"--pidfile", filepath.Join(dir, "dockerd.pid"),
		"-H", d.Host,
		// Own namespaces, in case dockerd joins a system containerd.
		"--containerd-namespace", ns,
		"--containerd-plugins-namespace", ns + "-plugins",
	}, flags...)
	return d, nil
}

// DockerOptions configure StartDocker.
type DockerOptions struct {
	// DiskSize, when positive, puts the engine's data root on a tmpfs of
	// that many bytes, so that a test can fill its disk.
	DiskSize int64
	// Suite, when set, runs the Docker Engine of that Debian suite instead
	// of the host's: dockerd from a cached Rootfs of the suite, in
	// systemd-nspawn (see EngineSuites).
	Suite string
	// ContainerdStore runs the engine with the containerd image store
	// (containerd-snapshotter) instead of the classic graph driver. Docker
	// 24 and later only: not the host's 20.10.
	ContainerdStore bool
}

// extraEngines numbers the engines StartDocker made.
var extraEngines atomic.Int32

// StartDocker starts a Docker Engine of the test's own, apart from the one
// Docker shares, and stops it, unmounts its disk and removes its files when
// t ends. It calls Require.
func StartDocker(t testing.TB, opts DockerOptions) *DockerEngine {
	t.Helper()
	Require(t)
	var root string
	switch {
	case opts.Suite != "":
		root = dockerRootfs(t, opts.Suite)
	case opts.ContainerdStore:
		t.Fatal("testenv: the host's Docker Engine 20.10 has no containerd image store; choose a Suite")
	}
	dir := filepath.Join(workDir(t), fmt.Sprintf("docker-%d", extraEngines.Add(1)))
	var dataRoot string
	if opts.DiskSize > 0 {
		disk := filepath.Join(dir, "disk")
		if err := mountTmpfs(disk, opts.DiskSize); err != nil {
			t.Fatalf("testenv: the engine's small disk: %v", err)
		}
		dataRoot = filepath.Join(disk, "data")
	}
	t.Cleanup(func() {
		unmountUnder(dir)
		_ = os.RemoveAll(dir)
	})
	d, err := newDocker(dir, dataRoot, opts, root)
	if err == nil {
		err = d.start(await.Limit(t))
	}
	if err != nil {
		t.Fatalf("testenv: start a Docker Engine: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("testenv: last lines of %s:\n%s", d.logPath, logTail(d.logPath, 30))
		}
		if err := d.stop(); err != nil {
			t.Errorf("testenv: %v", err)
		}
	})
	return d
}

// Start starts the engine on its existing data root and waits until it
// answers. It fails t if the engine is running already.
func (d *DockerEngine) Start(t testing.TB) {
	t.Helper()
	if err := d.start(await.Limit(t)); err != nil {
		t.Fatalf("testenv: start the Docker Engine: %v", err)
	}
}

// Stop stops the engine (SIGTERM, then SIGKILL to its process group).
func (d *DockerEngine) Stop(t testing.TB) {
	t.Helper()
	if err := d.stop(); err != nil {
		t.Fatalf("testenv: stop the Docker Engine: %v", err)
	}
}

// Restart stops the engine and starts it again on the same data root, so
// that images pulled before are still there.
func (d *DockerEngine) Restart(t testing.TB) {
	t.Helper()
	d.Stop(t)
	d.Start(t)
}

// ping asks the engine's API for GET /_ping over the unix socket.
func (d *DockerEngine) ping() error {
	_, err := d.apiGet("/_ping")
	return err
}

// apiGet asks the engine's API for GET path over the unix socket and
// returns the body of a 200 answer.
func (d *DockerEngine) apiGet(path string) ([]byte, error) {
	client := &http.Client{
		Timeout: 2 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var dialer net.Dialer
			return dialer.DialContext(ctx, "unix", d.sock)
		}},
	}
	defer client.CloseIdleConnections()
	resp, err := client.Get("http://docker" + path)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return io.ReadAll(resp.Body)
}

// UseMirror makes reg the engine's registry mirror, as dockerd
// --registry-mirror http://ADDR does: the engine sends pulls of docker.io
// references to reg first. The engine reloads its daemon.json on SIGHUP and
// keeps running, so nothing else is disturbed; the mirror is removed again
// when t ends. Only docker.io references use a mirror.
func (d *DockerEngine) UseMirror(t testing.TB, reg *Registry) {
	t.Helper()
	url := reg.scheme + "://" + reg.Addr + "/"
	if err := d.setMirrors([]string{url}, await.Limit(t)); err != nil {
		t.Fatalf("testenv: use the registry mirror %s: %v", url, err)
	}
	t.Cleanup(func() {
		if err := d.setMirrors([]string{}, await.Limit(t)); err != nil {
			t.Errorf("testenv: remove the registry mirror: %v", err)
		}
	})
}

// setMirrors writes registry-mirrors to daemon.json and, when the engine
// runs, has it reload the file and waits up to limit until its /info shows
// them. An
// empty list is written out, never left out: a reload keeps the mirrors of
// a key that is missing.
func (d *DockerEngine) setMirrors(mirrors []string, limit time.Duration) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.writeDaemonJSON(mirrors); err != nil {
		return err
	}
	if d.proc == nil {
		return nil // the next start reads it
	}
	if err := d.signalLocked(syscall.SIGHUP); err != nil {
		return fmt.Errorf("reload dockerd: %w", err)
	}
	deadline := time.Now().Add(limit)
	for {
		var info struct {
			RegistryConfig struct{ Mirrors []string }
		}
		body, err := d.apiGet("/info")
		if err == nil {
			err = json.Unmarshal(body, &info)
		}
		if err == nil && slices.Equal(info.RegistryConfig.Mirrors, mirrors) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("dockerd shows mirrors %q after %v, want %q (%v); last lines of %s:\n%s",
				info.RegistryConfig.Mirrors, limit, mirrors, err, d.logPath, logTail(d.logPath, 10))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// writeDaemonJSON writes the engine's daemon.json: its features and, when
// mirrors is not nil, its registry mirrors.
func (d *DockerEngine) writeDaemonJSON(mirrors []string) error {
	config := map[string]any{}
	if d.features != nil {
		config["features"] = d.features
	}
	if mirrors != nil {
		config["registry-mirrors"] = mirrors
	}
	data, err := json.Marshal(config)
	if err == nil {
		err = os.WriteFile(d.daemonJSON, append(data, '\n'), 0o600)
	}
	if err != nil {
		return fmt.Errorf("write daemon.json: %w", err)
	}
	return nil
}

// cliEnv is the environment of the docker CLI: this engine, the given
// DOCKER_CONFIG, the classic builder, and no DOCKER_ variable of the caller.
// PATH names an empty directory: where docker-credential-pass is installed,
// the CLI would otherwise store every login in pass (its default store on
// Linux) instead of the config.json that the tests read.
func (d *DockerEngine) cliEnv(config string) []string {
	return cleanEnv([]string{"DOCKER_", "PATH="},
		"PATH="+d.cliPath,
		"DOCKER_HOST="+d.Host,
		"DOCKER_CONFIG="+config,
		"DOCKER_BUILDKIT=0",
		"DOCKER_CLI_HINTS=false",
	)
}

// Run runs the docker CLI with args against the engine, with the harness's
// own DOCKER_CONFIG, and returns its standard output without surrounding
// space. It fails t when the command fails. Call it from the test's
// goroutine.
func (d *DockerEngine) Run(t testing.TB, args ...string) string {
	t.Helper()
	out, err := runCmd(d.cliEnv(d.cliConfig), nil, append([]string{d.cli}, args...)...)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return strings.TrimSpace(out)
}

// HasImage reports whether the engine holds the image that ref names.
func (d *DockerEngine) HasImage(t testing.TB, ref string) bool {
	t.Helper()
	_, err := runCmd(d.cliEnv(d.cliConfig), nil, d.cli, "image", "inspect", "--format", "{{.Id}}", ref)
	switch {
	case err == nil:
		return true
	case stderrContains(err, "No such image"):
		return false
	default:
		t.Fatalf("testenv: %v", err)
		return false
	}
}

// RemoveImage removes the image that ref names from the engine, with all its
// tags. An image that is not there is not an error.
func (d *DockerEngine) RemoveImage(t testing.TB, ref string) {
	t.Helper()
	// prepull's local names (prepull.invalid/...) go too: with one left,
	// the engine would only untag ref and keep the layers, and the next
	// pull would not reach the registry.
	args := []string{d.cli, "image", "rm", "--force", ref}
	if tags, err := runCmd(d.cliEnv(d.cliConfig), nil, d.cli, "image", "inspect", "--format", "{{range .RepoTags}}{{println .}}{{end}}", ref); err == nil {
		for _, tag := range strings.Fields(tags) {
			if strings.HasPrefix(tag, "prepull.invalid/") {
				args = append(args, tag)
			}
		}
	}
	_, err := runCmd(d.cliEnv(d.cliConfig), nil, args...)
	if err != nil && !stderrContains(err, "No such image") {
		t.Fatalf("testenv: %v", err)
	}
}

// ImageOptions shape the image that PushImage makes. The zero value makes a
// one-layer image of 100 KiB tagged "latest".
type ImageOptions struct {
	// Tag is pushed along with the image; "latest" when empty.
	Tag string
	// Size is the number of random bytes in the image, spread evenly over
	// its layers; 100 KiB when zero.
	Size int
	// Layers is the number of layers; 1 when zero.
	Layers int
}

var pushDigest = regexp.MustCompile(`digest: (sha256:[0-9a-f]{64})`)

// PushImage makes a new image of random content (so its digest is new too),
// pushes it to reg as repo, logging in with reg's user when it has one,
// removes the local copy and returns the image's digest, "sha256:" and 64
// hex digits. The image is written as a docker save archive and loaded with
// docker load, which needs no builder and no network.
func (d *DockerEngine) PushImage(t testing.TB, reg *Registry, repo string, opts ImageOptions) string {
	t.Helper()
	if opts.Tag == "" {
		opts.Tag = "latest"
	}
	if opts.Size <= 0 {
		opts.Size = 100 << 10
	}
	if opts.Layers <= 0 {
		opts.Layers = 1
	}
	ref := reg.Addr + "/" + repo + ":" + opts.Tag

	var archive bytes.Buffer
	if err := writeImageArchive(&archive, ref, opts); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	// A config of this push only, so that no test sees its login. The
	// login is written into it rather than made with docker login: with no
	// login in config.json the docker CLI picks a credential store of its
	// own (pass, when docker-credential-pass is installed) and fails where
	// that store is not set up.
	config := t.TempDir()
	if reg.User != "" {
		auth := base64.StdEncoding.EncodeToString([]byte(reg.User + ":" + reg.Password))
		cfg, err := json.Marshal(map[string]any{"auths": map[string]any{reg.Addr: map[string]string{"auth": auth}}})
		if err == nil {
			err = os.WriteFile(filepath.Join(config, "config.json"), cfg, 0o600)
		}
		if err != nil {
			t.Fatalf("testenv: the push's docker config: %v", err)
		}
	}
	env := d.cliEnv(config)
	if _, err := runCmd(env, &archive, d.cli, "load", "--quiet"); err != nil {
		t.Fatalf("testenv: load the image: %v", err)
	}
	out, err := runCmd(env, nil, d.cli, "push", ref)
	if err != nil {
		t.Fatalf("testenv: push %s: %v", ref, err)
	}
	m := pushDigest.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("testenv: push %s printed no digest:\n%s", ref, out)
	}
	d.RemoveImage(t, ref)
	return m[1]
}

// writeImageArchive writes a docker save archive of one image tagged ref:
// opts.Layers layers, each one file of random bytes, opts.Size bytes in all.
func writeImageArchive(w io.Writer, ref string, opts ImageOptions) error {
	created := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	out := tar.NewWriter(w)
	add := func(name string, data []byte) error {
		hdr := &tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: created, Typeflag: tar.TypeReg}
		if err := out.WriteHeader(hdr); err != nil {
			return err
		}
		_, err := out.Write(data)
		return err
	}

	var layerPaths, diffIDs []string
	var history []map[string]string
	for i := 1; i <= opts.Layers; i++ {
		size := opts.Size / opts.Layers
		if i == opts.Layers {
			size += opts.Size % opts.Layers
		}
		name := fmt.Sprintf("layer%d", i)
		layer, err := layerTar(name, size, created)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(layer)
		path := hex.EncodeToString(sum[:]) + "/layer.tar"
		if err := add(path, layer); err != nil {
			return fmt.Errorf("image archive: %w", err)
		}
		layerPaths = append(layerPaths, path)
		diffIDs = append(diffIDs, "sha256:"+hex.EncodeToString(sum[:]))
		history = append(history, map[string]string{"created": created.Format(time.RFC3339), "created_by": "testenv " + name})
	}

	config, err := json.Marshal(map[string]any{
		"architecture": runtime.GOARCH,
		"os":           "linux",
		"created":      created.Format(time.RFC3339),
		"config":       map[string]any{},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": diffIDs},
		"history":      history,
	})
	if err != nil {
		return fmt.Errorf("image config: %w", err)
	}
	sum := sha256.Sum256(config)
	configPath := hex.EncodeToString(sum[:]) + ".json"
	manifest, err := json.Marshal([]map[string]any{{"Config": configPath, "RepoTags": []string{ref}, "Layers": layerPaths}})
	if err != nil {
		return fmt.Errorf("image manifest: %w", err)
	}
	if err := add(configPath, config); err != nil {
		return fmt.Errorf("image archive: %w", err)
	}
	if err := add("manifest.json", manifest); err != nil {
		return fmt.Errorf("image archive: %w", err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("image archive: %w", err)
	}
	return nil
}

// layerTar returns an uncompressed layer: one file called name of size
// random bytes, so that every layer and the image it is in are new.
func layerTar(name string, size int, created time.Time) ([]byte, error) {
	content := make([]byte, size)
	_, _ = rand.Read(content)
	var layer bytes.Buffer
	lw := tar.NewWriter(&layer)
	hdr := &tar.Header{Name: name, Mode: 0o644, Size: int64(size), ModTime: created, Typeflag: tar.TypeReg}
	if err := lw.WriteHeader(hdr); err != nil {
		return nil, fmt.Errorf("image layer: %w", err)
	}
	if _, err := lw.Write(content); err != nil {
		return nil, fmt.Errorf("image layer: %w", err)
	}
	if err := lw.Close(); err != nil {
		return nil, fmt.Errorf("image layer: %w", err)
	}
	return layer.Bytes(), nil
}
