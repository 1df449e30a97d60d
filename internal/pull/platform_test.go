package pull

import (
	"context"
	"errors"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/prepull/prepull/internal/config"
	"github.com/prepull/prepull/internal/credentials"
	"github.com/prepull/prepull/internal/engine"
)

// fakePlatforms is what a fakeEngine says of platforms.
type fakePlatforms struct {
	engine    engine.Platform   // the engine's own
	image     engine.Platform   // the local image's
	remote    []engine.Platform // the registry's answer
	remoteErr error             // the registry's answer, when set
	inspects  int               // registry inspections made
}

var (
	amd64   = engine.Platform{OS: "linux", Architecture: "amd64"}
	arm64   = engine.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}
	s390x   = engine.Platform{OS: "linux", Architecture: "s390x"}
	unknown = engine.Platform{OS: "unknown", Architecture: "unknown"}
)

func (f *fakeEngine) fakePlatforms() *fakePlatforms {
	if f.platforms == nil {
		f.platforms = &fakePlatforms{engine: amd64, image: amd64, remote: []engine.Platform{amd64}}
	}
	return f.platforms
}

func (f *fakeEngine) Platform(context.Context) (engine.Platform, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fakePlatforms().engine, nil
}

func (f *fakeEngine) Distribution(_ context.Context, ref string, _ *engine.Auth) (engine.Distribution, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.fakePlatforms()
	p.inspects++
	if p.remoteErr != nil {
		return engine.Distribution{}, p.remoteErr
	}
	_, d, _ := strings.Cut(ref, "@")
	return engine.Distribution{MediaType: "application/vnd.oci.image.index.v1+json", Digest: d, Platforms: p.remote}, nil
}

func (f *fakeEngine) ImagePlatform(_ context.Context, ref string) (engine.Platform, error) {
	if _, err := f.RepoDigests(context.Background(), ref); err != nil {
		return engine.Platform{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fakePlatforms().image, nil
}

func TestEnsurePlatform(t *testing.T) {
	remote := func(ps ...engine.Platform) *fakePlatforms {
		return &fakePlatforms{engine: amd64, image: amd64, remote: ps}
	}
	errOdd := errors.New("inspect: Error response from daemon: something no one has seen")
	tests := []struct {
		name      string
		engine    *fakeEngine
		opts      Options
		want      Status
		wantErr   error
		wantText  []string // substrings of the error
		noText    string   // not in the error, when set
		pulls     int
		inspected bool // the registry was asked
	}{
		{name: "an arm64 image is refused before the pull", engine: &fakeEngine{platforms: remote(arm64)}, want: Failed, wantErr: ErrPlatform,
			wantText: []string{"the image cannot run on this proxy", "built for linux/arm64/v8 only", "runs linux/amd64 images", "Apple Silicon Mac", "rebuild it for linux/amd64"}, inspected: true},
		{name: "an index with amd64 is pulled", engine: &fakeEngine{verifies: true, platforms: remote(arm64, amd64)}, want: Pulled, pulls: 1, inspected: true},
		{name: "attestation entries are no platforms", engine: &fakeEngine{verifies: true, platforms: remote(amd64, arm64, unknown, unknown)}, want: Pulled, pulls: 1, inspected: true},
		{name: "an index without amd64 is refused, attestations left out", engine: &fakeEngine{platforms: remote(arm64, s390x, unknown, unknown)}, want: Failed, wantErr: ErrPlatform,
			wantText: []string{"built for linux/arm64/v8, linux/s390x only"}, noText: "Apple", inspected: true},
		{name: "an index of s390x alone names no Mac", engine: &fakeEngine{platforms: remote(s390x)}, want: Failed, wantErr: ErrPlatform,
			wantText: []string{"linux/s390x only", "rebuild it for linux/amd64"}, noText: "Apple", inspected: true},
		{name: "an arm64 engine takes arm64", engine: &fakeEngine{verifies: true, platforms: &fakePlatforms{engine: engine.Platform{OS: "linux", Architecture: "aarch64"}, image: arm64, remote: []engine.Platform{arm64}}},
			want: Pulled, pulls: 1, inspected: true},
		{name: "no platform named: pulled, then checked", engine: &fakeEngine{verifies: true, platforms: &fakePlatforms{engine: amd64, image: arm64}}, want: Failed, wantErr: ErrPlatform, pulls: 1, inspected: true},
		{name: "a present image of another platform", engine: &fakeEngine{present: true, platforms: &fakePlatforms{engine: amd64, image: arm64}}, want: Failed, wantErr: ErrPlatform},
		{name: "a present image of the engine's platform", engine: &fakeEngine{present: true}, want: Present},
		{name: "an unknown digest is refused before the pull", engine: &fakeEngine{platforms: &fakePlatforms{engine: amd64, remoteErr: errNotFound}}, want: Failed, wantErr: engine.ErrNotFound, inspected: true},
		{name: "an answer no one knows does not stop a pull", engine: &fakeEngine{verifies: true, platforms: &fakePlatforms{engine: amd64, image: amd64, remoteErr: errOdd}}, want: Pulled, pulls: 1, inspected: true},

		{name: "dry run: fits", engine: &fakeEngine{platforms: remote(amd64)}, opts: Options{DryRun: true}, want: WouldPull, inspected: true},
		{name: "dry run: arm64", engine: &fakeEngine{platforms: remote(arm64)}, opts: Options{DryRun: true}, want: Failed, wantErr: ErrPlatform, inspected: true},
		{name: "dry run: unknown digest", engine: &fakeEngine{platforms: &fakePlatforms{engine: amd64, remoteErr: errNotFound}}, opts: Options{DryRun: true}, want: Failed, wantErr: engine.ErrNotFound, inspected: true},
		{name: "dry run: refused login", engine: &fakeEngine{platforms: &fakePlatforms{engine: amd64, remoteErr: errDenied}}, opts: Options{DryRun: true}, want: Failed, wantErr: engine.ErrUnauthorized,
			wantText: []string{"prepull has no login for harbor.example:8443"}, inspected: true},
		{name: "dry run: an answer no one knows fails", engine: &fakeEngine{platforms: &fakePlatforms{engine: amd64, remoteErr: errOdd}}, opts: Options{DryRun: true}, want: Failed, wantText: []string{"something no one has seen"}, inspected: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &Puller{
				Engine:      tt.engine,
				Credentials: &credentials.Resolver{Config: &config.Config{}, DockerConfigDir: t.TempDir()},
				Log:         zap.NewNop(),
				Backoff:     fastBackoff,
			}
			r := p.Ensure(context.Background(), target, tt.opts)
			checkResult(t, r, tt.want, tt.wantErr, tt.wantText...)
			if tt.noText != "" && strings.Contains(errString(r.Err), tt.noText) {
				t.Errorf("error %v says %q", r.Err, tt.noText)
			}
			if errors.Is(r.Err, ErrPlatform) && Transient(r.Err) {
				t.Errorf("a platform error is transient: %v", r.Err)
			}
			if strings.Contains(errString(r.Err), "unknown/unknown") {
				t.Errorf("the error names an attestation entry as a platform: %v", r.Err)
			}
			if tt.engine.pullCalls != tt.pulls {
				t.Errorf("pull attempts = %d, want %d", tt.engine.pullCalls, tt.pulls)
			}
			if got := tt.engine.fakePlatforms().inspects > 0; got != tt.inspected {
				t.Errorf("registry inspected: %v, want %v", got, tt.inspected)
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestPlatformErrorQuotesOddNames(t *testing.T) {
	err := &PlatformError{Reference: "r.example/x@" + digest, Have: []engine.Platform{{OS: "linux", Architecture: "arm\x1b[31m"}}, Need: amd64}
	if strings.ContainsRune(err.Error(), 0x1b) {
		t.Fatalf("the error holds a raw escape: %q", err)
	}
	if !errors.Is(err, ErrPlatform) {
		t.Fatal("a PlatformError does not match ErrPlatform")
	}
}
