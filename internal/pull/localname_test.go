package pull

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/prepull/prepull/internal/config"
	"github.com/prepull/prepull/internal/credentials"
	"github.com/prepull/prepull/internal/engine"
	"github.com/prepull/prepull/internal/pak"
)

func TestLocalName(t *testing.T) {
	const hex12 = "0123456789ab"
	tests := []struct {
		name, kind, ref, want string
	}{
		{"registry with a port", "MyAdapter", "harbor.example:8443/proj/adapter@" + digest, "prepull.invalid/proj/adapter:MyAdapter-" + hex12},
		{"Docker Hub official image", "Hub", "docker.io/library/nginx@" + digest, "prepull.invalid/library/nginx:Hub-" + hex12},
		{"kind cleaned to tag characters", "My Adapter/ü:1", "r.example/a@" + digest, "prepull.invalid/a:My-Adapter---1-" + hex12},
		{"kind starting with a dot or dash", ".-x", "r.example/a@" + digest, "prepull.invalid/a:x-" + hex12},
		{"no kind", "", "r.example/a@" + digest, "prepull.invalid/a:image-" + hex12},
		{"kind of only punctuation", "--", "r.example/a@" + digest, "prepull.invalid/a:image-" + hex12},
		{"long kind cut to fit a tag", strings.Repeat("K", 200), "r.example/a@" + digest, "prepull.invalid/a:" + strings.Repeat("K", 115) + "-" + hex12},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := LocalName(pak.Target{Image: pak.Image{AdapterKind: tt.kind}, Reference: tt.ref})
			if err != nil || got != tt.want {
				t.Fatalf("LocalName = %q, %v; want %q", got, err, tt.want)
			}
			if !IsLocalName(got, tt.ref) {
				t.Errorf("IsLocalName(%q, %q) = false", got, tt.ref)
			}
		})
	}
	if _, err := LocalName(pak.Target{Reference: "r.example/a:latest"}); err == nil {
		t.Error("LocalName of a reference without a digest succeeded")
	}
}

func TestIsLocalName(t *testing.T) {
	ref := "harbor.example:8443/proj/adapter@" + digest
	tests := []struct {
		name string
		want bool
	}{
		{"prepull.invalid/proj/adapter:MyAdapter-0123456789ab", true},
		{"prepull.invalid/proj/adapter:OtherKind-0123456789ab", true},
		{"prepull.invalid/proj/adapter:MyAdapter-ffffffffffff", false}, // another digest
		{"prepull.invalid/proj/other:MyAdapter-0123456789ab", false},   // another repository
		{"harbor.example:8443/proj/adapter:MyAdapter-0123456789ab", false},
		{"proj/adapter:latest", false},
		{ref, false},
		{"prepull.invalid/proj/adapter@" + digest, false},
		{"not a reference!", false},
	}
	for _, tt := range tests {
		if got := IsLocalName(tt.name, ref); got != tt.want {
			t.Errorf("IsLocalName(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// namingEngine is a fakeEngine that records local names.
type namingEngine struct {
	*fakeEngine
	names map[string]string // name: the reference it names
	err   error             // every Name call fails with it
}

func (e *namingEngine) Name(_ context.Context, ref, name string) (bool, error) {
	if e.err != nil {
		return false, e.err
	}
	if e.names[name] == ref {
		return false, nil
	}
	e.names[name] = ref
	return true, nil
}

func TestEnsureGivesTheLocalName(t *testing.T) {
	kinded := target
	kinded.AdapterKind = "MyAdapter"
	want := "prepull.invalid/proj/adapter:MyAdapter-0123456789ab"
	tests := []struct {
		name    string
		engine  *fakeEngine
		opts    Options
		nameErr error
		status  Status
		named   bool
		log     string
	}{
		{name: "pulled", engine: &fakeEngine{verifies: true}, status: Pulled, named: true, log: "image named for prepull"},
		{name: "present", engine: &fakeEngine{present: true}, status: Present, named: true, log: "image named for prepull"},
		{name: "dry run names nothing", engine: &fakeEngine{}, opts: Options{DryRun: true}, status: WouldPull},
		{name: "a failed pull names nothing", engine: &fakeEngine{pulls: failing(1, errNotFound)}, status: Failed},
		{name: "a name taken by another image is left alone, the pull still succeeds", engine: &fakeEngine{present: true},
			nameErr: fmt.Errorf("name %s: %w", want, engine.ErrNameTaken), status: Present, log: "names another image"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eng := &namingEngine{fakeEngine: tt.engine, names: map[string]string{}, err: tt.nameErr}
			core, logs := observer.New(zap.InfoLevel)
			p := &Puller{
				Engine:      eng,
				Namer:       eng,
				Credentials: &credentials.Resolver{Config: &config.Config{}, DockerConfigDir: t.TempDir()},
				Log:         zap.New(core),
				Backoff:     fastBackoff,
			}
			r := p.Ensure(context.Background(), kinded, tt.opts)
			if r.Status != tt.status {
				t.Fatalf("status %s (%v), want %s", r.Status, r.Err, tt.status)
			}
			if got := eng.names[want] == kinded.Reference; got != tt.named {
				t.Errorf("named %v (names %v), want %v", got, eng.names, tt.named)
			}
			if tt.log != "" && logs.FilterMessageSnippet(tt.log).Len() != 1 {
				t.Errorf("no log line %q in %v", tt.log, logs.All())
			}
			// A second look at a named image names nothing and says nothing.
			if tt.named {
				before := logs.Len()
				if r := p.Ensure(context.Background(), kinded, Options{}); r.Status != Present || logs.FilterMessageSnippet("image named").Len() != 1 {
					t.Errorf("second Ensure: %s, %d new log lines", r.Status, logs.Len()-before)
				}
			}
		})
	}
}
