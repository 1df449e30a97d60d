//go:build linux

package engine

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prepull/prepull/internal/testenv"
)

// These tests run against a real Docker Engine and registry that testenv
// starts on loopback; they are skipped unless PREPULL_E2E=1 or CI is set.

func TestMain(m *testing.M) { testenv.Main(m) }

const zeroDigest = "sha256:0000000000000000000000000000000000000000000000000000000000000000"

func TestDockerPing(t *testing.T) {
	d := testenv.Docker(t)
	e, err := NewDocker(d.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	v, err := e.Ping(context.Background())
	if err != nil {
		t.Fatalf("Ping: %v", err)
	}
	// The engine's API version, not the client's newer one (1.51): Debian's
	// docker.io 20.10 answers 1.41.
	if !regexp.MustCompile(`^1\.[0-9]+$`).MatchString(v) || v == "1.51" {
		t.Errorf("Ping negotiated %q", v)
	}
	t.Logf("negotiated API %s", v)
}

func TestDockerUnreachable(t *testing.T) {
	e, err := NewDocker("unix://" + t.TempDir() + "/none.sock")
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx := context.Background()
	_, err = e.Ping(ctx)
	// Cannot connect to the Docker daemon at unix:///tmp/…/none.sock. Is the docker daemon running?
	if !errors.Is(err, ErrUnreachable) || !Transient(err) || !strings.Contains(err.Error(), "Cannot connect to the Docker daemon") {
		t.Errorf("Ping of no engine = %v, want ErrUnreachable, transient, with the client's message", err)
	}
	if err := e.Pull(ctx, "127.0.0.1:1/proj/x@"+zeroDigest, nil, nil); !errors.Is(err, ErrUnreachable) {
		t.Errorf("Pull from no engine = %v, want ErrUnreachable", err)
	}
}

// TestDockerPullByDigest logs in, fails to pull in every way the
// classification knows, and pulls, on each Docker Engine and image store of
// testenv.Engines: every engine's errors must mean the same. The texts it
// logs ("engine said") are the fixtures of TestClassifyText.
func TestDockerPullByDigest(t *testing.T) {
	testenv.ForEachEngine(t, testDockerPullByDigest)
}

func testDockerPullByDigest(t *testing.T, d *testenv.DockerEngine) {
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{User: "alice", Password: "s3cret-pw"})
	// Pushed by the host's engine: the engine under test only pulls.
	digest := testenv.Docker(t).PushImage(t, reg, "proj/x", testenv.ImageOptions{Layers: 2, Size: 1 << 20})
	ref := reg.Addr + "/proj/x@" + digest

	e, err := NewDocker(d.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	api, err := e.Ping(ctx)
	if err != nil {
		t.Fatalf("Ping: %v", err)
	}
	t.Logf("Docker %s, API %s", d.Info(t).Version, api)

	good := Auth{ServerAddress: reg.Addr, Username: reg.User, Password: reg.Password}
	bad := Auth{ServerAddress: reg.Addr, Username: reg.User, Password: "wrong-pw"}

	t.Run("login", func(t *testing.T) {
		tests := []struct {
			name string
			auth Auth
			want error
		}{
			{"good", good, nil},
			// login attempt to http://127.0.0.1:PORT/v2/ failed with status: 401 Unauthorized
			{"wrong password", bad, ErrUnauthorized},
			{"unknown user", Auth{ServerAddress: reg.Addr, Username: "bob", Password: "wrong-pw"}, ErrUnauthorized},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				err := e.Login(ctx, tt.auth)
				if kind := kindOf(t, err); kind != tt.want || (tt.want != nil && err == nil) {
					t.Fatalf("Login = %v, want %v", err, tt.want)
				}
				if err != nil && (Transient(err) || strings.Contains(err.Error(), tt.auth.Password)) {
					t.Errorf("Login error %q is transient or shows the password", err)
				}
				if err != nil {
					t.Logf("engine said: %v", err)
				}
			})
		}
	})

	if _, err := e.RepoDigests(ctx, ref); !errors.Is(err, ErrNotPresent) {
		t.Fatalf("RepoDigests before the pull = %v, want ErrNotPresent", err)
	}

	t.Run("failing pulls", func(t *testing.T) {
		tests := []struct {
			name string
			ref  string
			auth *Auth
			want error
		}{
			// Get "http://…/manifests/sha256:…": no basic auth credentials
			{"anonymous", ref, nil, ErrUnauthorized},
			// unauthorized: authentication required
			{"wrong password", ref, &bad, ErrUnauthorized},
			// manifest for …@sha256:000… not found: manifest unknown: manifest unknown
			{"unknown digest", reg.Addr + "/proj/x@" + zeroDigest, &good, ErrNotFound},
			{"unknown repository", reg.Addr + "/proj/nope@" + zeroDigest, &good, ErrNotFound},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				err := e.Pull(ctx, tt.ref, tt.auth, nil)
				if !errors.Is(err, tt.want) {
					t.Fatalf("Pull = %v, want %v", err, tt.want)
				}
				if Transient(err) || strings.Contains(err.Error(), good.Password) || strings.Contains(err.Error(), bad.Password) {
					t.Errorf("Pull error %q is transient or shows a password", err)
				}
				t.Logf("engine said: %v", err)
			})
		}
	})

	t.Run("pull", func(t *testing.T) {
		var events []Progress
		err := e.Pull(ctx, ref, &good, func(p Progress) { events = append(events, p) })
		if err != nil {
			t.Fatalf("Pull: %v", err)
		}
		// The bytes the events announce (pull.Meter sums the same): each
		// layer's size, from its Downloading events.
		sizes := map[string]int64{}
		for _, p := range events {
			if p.Status == "Downloading" {
				sizes[p.Layer] = max(sizes[p.Layer], p.Total)
			}
		}
		var total int64
		for _, n := range sizes {
			total += n
		}
		last := fmt.Sprintf("%.1f MiB", float64(total)/(1<<20))
		if d.Info(t).ContainerdStore {
			// The containerd image store reports bytes only for layers
			// that take a while, and 26.1's never says "Pull complete":
			// the meter shows what it is told, no more.
			t.Logf("the layers add up to %s; events: %v", last, events)
		} else {
			complete := 0
			for _, p := range events {
				if p.Status == "Pull complete" {
					complete++
				}
			}
			if complete != 2 {
				t.Errorf("%d layers completed, want 2; events: %v", complete, events)
			}
			// All of the 1 MiB downloaded, and counted once.
			if last != "1.0 MiB" {
				t.Errorf("the layers add up to %s, want 1.0 MiB", last)
			}
		}

		digests, err := e.RepoDigests(ctx, ref)
		if err != nil || !slices.Contains(digests, ref) {
			t.Errorf("RepoDigests = %v, %v; want %s among them", digests, err, ref)
		}
		// Pulling what is there already works, and says so.
		if err := e.Pull(ctx, ref, &good, nil); err != nil {
			t.Errorf("second Pull: %v", err)
		}
	})

	t.Run("removed", func(t *testing.T) {
		d.RemoveImage(t, ref) // prepull removes nothing: the docker CLI does
		if _, err := e.RepoDigests(ctx, ref); !errors.Is(err, ErrNotPresent) {
			t.Errorf("RepoDigests after the image was removed = %v, want ErrNotPresent", err)
		}
	})

	t.Run("token login", func(t *testing.T) {
		treg := testenv.StartRegistry(t, testenv.RegistryOptions{User: "robot$proj+pull", Password: "Robot-pw-1", TokenAuth: true})
		tdigest := testenv.Docker(t).PushImage(t, treg, "proj/tok", testenv.ImageOptions{})
		tref := treg.Addr + "/proj/tok@" + tdigest
		tgood := Auth{ServerAddress: treg.Addr, Username: treg.User, Password: treg.Password}
		tbad := tgood
		tbad.Password = "wrong-pw"
		// The token server's 401 for a bad login.
		err := e.Login(ctx, tbad)
		if !errors.Is(err, ErrUnauthorized) || Transient(err) {
			t.Errorf("Login with a wrong password = %v, want ErrUnauthorized, not transient", err)
		}
		t.Logf("engine said: %v", err)
		for name, auth := range map[string]*Auth{"anonymous": nil, "wrong password": &tbad} {
			err := e.Pull(ctx, tref, auth, nil)
			if !errors.Is(err, ErrUnauthorized) || Transient(err) {
				t.Errorf("Pull, %s = %v, want ErrUnauthorized, not transient", name, err)
			}
			t.Logf("engine said (%s): %v", name, err)
		}
		if err := e.Login(ctx, tgood); err != nil {
			t.Fatalf("Login: %v", err)
		}
		if err := e.Pull(ctx, tref, &tgood, nil); err != nil {
			t.Fatalf("Pull: %v", err)
		}
	})

	t.Run("no matching platform", func(t *testing.T) {
		// An index of other platforms only, as buildx pushes it.
		idx := testenv.PushIndex(t, reg, "proj/foreign", testenv.IndexOptions{Platforms: []string{"linux/arm64", "linux/ppc64le"}, Attestations: true})
		err := e.Pull(ctx, reg.Addr+"/proj/foreign@"+idx, &good, nil)
		if !errors.Is(err, ErrPlatform) || Transient(err) {
			t.Errorf("Pull of an index without linux/amd64 = %v, want ErrPlatform, not transient", err)
		}
		t.Logf("engine said (index without amd64): %v", err)
		// A single arm64 image, as mp-build on an Apple Silicon Mac pushes it.
		arm := testenv.PushPlatformImage(t, reg, "proj/arm", "linux/arm64", "")
		err = e.Pull(ctx, reg.Addr+"/proj/arm@"+arm, &good, nil)
		t.Logf("engine said (linux/arm64 image): %v", err)
	})

	t.Run("registry down", func(t *testing.T) {
		reg.Stop(t)
		defer reg.Start(t)
		// Get "http://127.0.0.1:PORT/v2/": dial tcp 127.0.0.1:PORT: connect: connection refused
		err := e.Login(ctx, good)
		if !Transient(err) || kindOf(t, err) != ErrRegistryUnreachable {
			t.Errorf("Login to a stopped registry = %v, want transient ErrRegistryUnreachable", err)
		}
		err = e.Pull(ctx, ref, &good, nil)
		if !Transient(err) || kindOf(t, err) != ErrRegistryUnreachable {
			t.Errorf("Pull from a stopped registry = %v, want transient ErrRegistryUnreachable", err)
		}
		t.Logf("engine said: %v", err)
	})
}

// TestDockerPlatforms asks every engine of testenv.Engines for the
// platforms of an Apple Silicon Mac's image and of indexes as buildx pushes
// them, for its own platform and for a pulled image's.
func TestDockerPlatforms(t *testing.T) {
	testenv.ForEachEngine(t, testDockerPlatforms)
}

func testDockerPlatforms(t *testing.T, d *testenv.DockerEngine) {
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{User: "alice", Password: "s3cret-pw"})
	arm := reg.Addr + "/mac/adapter@" + testenv.PushPlatformImage(t, reg, "mac/adapter", "linux/arm64", "")
	list := reg.Addr + "/multi/list@" + testenv.PushIndex(t, reg, "multi/list", testenv.IndexOptions{Platforms: []string{"linux/amd64", "linux/arm64"}})
	attested := reg.Addr + "/multi/attested@" + testenv.PushIndex(t, reg, "multi/attested", testenv.IndexOptions{Platforms: []string{"linux/amd64", "linux/arm64"}, Attestations: true})
	noAMD := reg.Addr + "/multi/noamd@" + testenv.PushIndex(t, reg, "multi/noamd", testenv.IndexOptions{Platforms: []string{"linux/arm64", "linux/s390x"}})

	e, err := NewDocker(d.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	own, err := e.Platform(ctx)
	if err != nil || own.OS != "linux" || own.Architecture == "" {
		t.Fatalf("Platform = %v, %v; want linux/ARCH", own, err)
	}
	t.Logf("engine platform %s", own)

	good := Auth{ServerAddress: reg.Addr, Username: reg.User, Password: reg.Password}
	bad := Auth{ServerAddress: reg.Addr, Username: reg.User, Password: "wrong-pw"}
	t.Run("distribution", func(t *testing.T) {
		tests := []struct {
			name      string
			ref       string
			mediaType string
			platforms string
		}{
			{"arm64 image", arm, "application/vnd.docker.distribution.manifest.v2+json", "linux/arm64"},
			{"manifest list", list, "application/vnd.docker.distribution.manifest.list.v2+json", "linux/amd64 linux/arm64"},
			{"index with attestations", attested, "application/vnd.oci.image.index.v1+json", "linux/amd64 linux/arm64 unknown/unknown unknown/unknown"},
			{"index without amd64", noAMD, "application/vnd.docker.distribution.manifest.list.v2+json", "linux/arm64 linux/s390x"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				di, err := e.Distribution(ctx, tt.ref, &good)
				if err != nil {
					t.Fatalf("Distribution: %v", err)
				}
				var got []string
				for _, p := range di.Platforms {
					got = append(got, p.String())
				}
				_, digest, _ := strings.Cut(tt.ref, "@")
				if di.MediaType != tt.mediaType || di.Digest != digest || strings.Join(got, " ") != tt.platforms {
					t.Errorf("Distribution = %+v, want %s %s with %s", di, tt.mediaType, digest, tt.platforms)
				}
			})
		}
	})

	t.Run("failing distribution", func(t *testing.T) {
		tests := []struct {
			name string
			ref  string
			auth *Auth
			want error
		}{
			{"anonymous", arm, nil, ErrUnauthorized},
			{"wrong password", arm, &bad, ErrUnauthorized},
			{"unknown digest", reg.Addr + "/mac/adapter@" + zeroDigest, &good, ErrNotFound},
			{"unknown repository", reg.Addr + "/proj/nope@" + zeroDigest, &good, ErrNotFound},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := e.Distribution(ctx, tt.ref, tt.auth)
				t.Logf("engine said: %v", err)
				if !errors.Is(err, tt.want) {
					t.Fatalf("Distribution = %v, want %v", err, tt.want)
				}
				if Transient(err) || strings.Contains(err.Error(), good.Password) || strings.Contains(err.Error(), bad.Password) {
					t.Errorf("Distribution error %q is transient or shows a password", err)
				}
			})
		}
	})

	t.Run("image platform", func(t *testing.T) {
		if _, err := e.ImagePlatform(ctx, list); !errors.Is(err, ErrNotPresent) {
			t.Fatalf("ImagePlatform before the pull = %v, want ErrNotPresent", err)
		}
		for ref, want := range map[string]string{arm: "linux/arm64", list: own.String(), attested: own.String()} {
			if err := e.Pull(ctx, ref, &good, nil); err != nil {
				t.Fatalf("Pull %s: %v", ref, err)
			}
			p, err := e.ImagePlatform(ctx, ref)
			if err != nil || p.OS+"/"+p.Architecture != want {
				t.Errorf("ImagePlatform(%s) = %v, %v; want %s", ref, p, err, want)
			}
			d.RemoveImage(t, ref)
		}
	})
}
