package pull

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/prepull/prepull/internal/config"
	"github.com/prepull/prepull/internal/credentials"
	"github.com/prepull/prepull/internal/engine"
	"github.com/prepull/prepull/internal/pak"
	"github.com/prepull/prepull/internal/retry"
)

const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// fakeEngine scripts an engine for unit tests of the pull logic. pulls holds
// what each pull attempt does, in order; after the script ends pulls succeed.
type fakeEngine struct {
	mu        sync.Mutex
	present   bool
	loginErr  error
	pulls     []attempt
	verifies  bool           // a successful pull makes the image present
	vanishes  bool           // the image is removed right after a look finds it, once
	platforms *fakePlatforms // nil: linux/amd64 everywhere

	logins, pullCalls int
	auths             []*engine.Auth
}

func (f *fakeEngine) Login(_ context.Context, a engine.Auth) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logins++
	return f.loginErr
}

func (f *fakeEngine) Pull(ctx context.Context, ref string, a *engine.Auth, progress func(engine.Progress)) error {
	f.mu.Lock()
	n := f.pullCalls
	f.pullCalls++
	f.auths = append(f.auths, a)
	f.mu.Unlock()
	if n < len(f.pulls) {
		if err := f.pulls[n](ctx, progress); err != nil {
			return err
		}
	}
	f.mu.Lock()
	f.present = f.verifies
	f.mu.Unlock()
	return nil
}

func (f *fakeEngine) RepoDigests(_ context.Context, ref string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.present {
		return nil, fmt.Errorf("inspect %s: %w", ref, engine.ErrNotPresent)
	}
	if f.vanishes {
		f.vanishes, f.present = false, false
	}
	name, _, _ := strings.Cut(ref, "@")
	return []string{name + "@" + digest}, nil
}

// attempt is what one scripted pull attempt does.
type attempt = func(ctx context.Context, progress func(engine.Progress)) error

// failing returns n attempts that each fail with err.
func failing(n int, err error) []attempt {
	a := make([]attempt, n)
	for i := range a {
		a[i] = func(context.Context, func(engine.Progress)) error { return err }
	}
	return a
}

// stall sends one progress event and then hangs until the attempt is cancelled.
func stall(ctx context.Context, progress func(engine.Progress)) error {
	progress(engine.Progress{Layer: "abc", Status: "Downloading", Current: 1, Total: 10})
	<-ctx.Done()
	return ctx.Err()
}

// progressing sends progress every 2ms until the attempt is cancelled.
func progressing(ctx context.Context, progress func(engine.Progress)) error {
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for {
		progress(engine.Progress{Layer: "abc", Status: "Downloading", Current: 2, Total: 10})
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

var (
	errRefused   = fmt.Errorf("pull: %w", errors.New("dial tcp 127.0.0.1:5000: connect: connection refused"))
	errNotFound  = fmt.Errorf("pull: %w: manifest unknown", engine.ErrNotFound)
	errDenied    = fmt.Errorf("login: %w: 401 Unauthorized", engine.ErrUnauthorized)
	target       = pak.Target{Image: pak.Image{File: "MyAdapter_1.0.0.pak"}, Registry: "harbor.example:8443", Reference: "harbor.example:8443/proj/adapter@" + digest}
	withLogin    = &config.Config{Registries: []config.Registry{{Host: "harbor.example:8443", Username: "robot$pull", PasswordEnv: "PW"}}}
	fastBackoff  = retry.Backoff{Base: time.Millisecond, Max: 5 * time.Millisecond}
	testPassword = "hunter2-secret"
)

func TestEnsure(t *testing.T) {
	tests := []struct {
		name        string
		engine      *fakeEngine
		cfg         *config.Config
		opts        Options
		want        Status
		wantErr     error  // errors.Is target
		wantErrText string // substring of the error
		pulls       int
		logins      int
	}{
		{name: "present, nothing to do", engine: &fakeEngine{present: true}, want: Present},
		{name: "an image removed between the presence look and the platform check is pulled", engine: &fakeEngine{present: true, vanishes: true, verifies: true},
			want: Pulled, pulls: 1},
		{name: "force pulls a present image", engine: &fakeEngine{present: true, verifies: true}, opts: Options{Force: true}, want: Pulled, pulls: 1},
		{name: "anonymous pull, no login", engine: &fakeEngine{verifies: true}, want: Pulled, pulls: 1},
		{name: "login then pull", engine: &fakeEngine{verifies: true}, cfg: withLogin, want: Pulled, pulls: 1, logins: 1},
		{name: "rejected login is not retried and pulls nothing", engine: &fakeEngine{loginErr: errDenied}, cfg: withLogin, want: Failed,
			wantErr: engine.ErrUnauthorized, wantErrText: `login to harbor.example:8443 as "robot$pull" (credentials from password_env PW)`, logins: 1},
		{name: "transient faults are retried", engine: &fakeEngine{verifies: true, pulls: failing(2, errRefused)}, want: Pulled, pulls: 3},
		{name: "an anonymous pull the registry refuses says which login is missing", engine: &fakeEngine{pulls: failing(1, errDenied)}, want: Failed,
			wantErr: engine.ErrUnauthorized, wantErrText: "prepull has no login for harbor.example:8443: add it to registries", pulls: 1},
		{name: "an anonymous refusal does not speak of rejected credentials", engine: &fakeEngine{pulls: failing(1, errDenied)}, opts: Options{LoginHint: "add it, then reload"}, want: Failed,
			wantErr: engine.ErrUnauthorized, wantErrText: "login: the registry refused a pull without a login: 401 Unauthorized (prepull has no login for harbor.example:8443: add it, then reload)", pulls: 1},
		{name: "not found is not retried", engine: &fakeEngine{pulls: failing(1, errNotFound)}, want: Failed, wantErr: engine.ErrNotFound, pulls: 1},
		{name: "a stalled pull is cancelled and retried", engine: &fakeEngine{verifies: true, pulls: []attempt{stall}}, opts: Options{StallTimeout: 50 * time.Millisecond}, want: Pulled, pulls: 2},
		{name: "a pull the engine cannot verify fails", engine: &fakeEngine{verifies: false}, want: Failed, wantErr: ErrNotVerified, pulls: 1},
		{name: "dry run checks the login and pulls nothing", engine: &fakeEngine{}, cfg: withLogin, opts: Options{DryRun: true}, want: WouldPull, logins: 1},
		{name: "timeout ends the retries", engine: &fakeEngine{pulls: failing(1000, errRefused)},
			opts: Options{Timeout: 40 * time.Millisecond}, want: Failed, wantErr: ErrTimedOut},
		// The first attempt stalls, the second makes progress (every 2ms,
		// a hundredth of the stall timeout) until the timeout cuts it
		// short: the error says both.
		{name: "a timeout that cuts an attempt after a stall short says it stalled", engine: &fakeEngine{pulls: []attempt{stall, progressing}},
			opts: Options{Timeout: 1500 * time.Millisecond, StallTimeout: 200 * time.Millisecond}, want: Failed,
			wantErr: ErrStalled, wantErrText: "pull stalled: no progress for 200ms; then timed out after 2 attempts"},
		{name: "an attempt after a stall cut short by the timeout is a timeout", engine: &fakeEngine{pulls: []attempt{stall, progressing}},
			opts: Options{Timeout: 1500 * time.Millisecond, StallTimeout: 200 * time.Millisecond}, want: Failed, wantErr: ErrTimedOut},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			if cfg == nil {
				cfg = &config.Config{}
			}
			p := &Puller{
				Engine:      tt.engine,
				Credentials: &credentials.Resolver{Config: cfg, DockerConfigDir: t.TempDir(), Getenv: func(string) string { return testPassword }},
				Log:         zap.NewNop(),
				Backoff:     fastBackoff,
			}
			r := p.Ensure(context.Background(), target, tt.opts)
			checkResult(t, r, tt.want, tt.wantErr, tt.wantErrText)
			if r.Err != nil && strings.Count(r.Err.Error(), target.Reference) > 1 {
				t.Errorf("error names the reference more than once: %v", r.Err)
			}
			if r.Err != nil && strings.Contains(r.Err.Error(), testPassword) {
				t.Fatalf("error reveals the password: %v", r.Err)
			}
			if tt.pulls > 0 && tt.engine.pullCalls != tt.pulls {
				t.Errorf("pull attempts = %d, want %d", tt.engine.pullCalls, tt.pulls)
			}
			if tt.engine.logins != tt.logins {
				t.Errorf("logins = %d, want %d", tt.engine.logins, tt.logins)
			}
			for _, a := range tt.engine.auths {
				if (a != nil) != (tt.logins > 0) {
					t.Errorf("pull auth = %v, want auth only when logged in", a)
				}
			}
		})
	}
}

// checkResult fails t unless r has status want and an error that wraps
// wantErr, when set, and contains each non-empty wantText; with neither, r
// must have no error.
func checkResult(t *testing.T, r Result, want Status, wantErr error, wantText ...string) {
	t.Helper()
	if r.Status != want {
		t.Fatalf("status = %s (err %v), want %s", r.Status, r.Err, want)
	}
	if wantErr != nil && !errors.Is(r.Err, wantErr) {
		t.Errorf("error %v, want one wrapping %v", r.Err, wantErr)
	}
	texts := 0
	for _, s := range wantText {
		if s == "" {
			continue
		}
		texts++
		if r.Err == nil || !strings.Contains(r.Err.Error(), s) {
			t.Errorf("error %v, want one containing %q", r.Err, s)
		}
	}
	if wantErr == nil && texts == 0 && r.Err != nil {
		t.Errorf("unexpected error %v", r.Err)
	}
}

// recorder is an Observer that writes down what it is told.
type recorder struct {
	mu       sync.Mutex
	attempts []int
	engine   []error
	retries  int
}

func (r *recorder) Retrying(string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.retries++
}

func (r *recorder) PullAttempt(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.attempts = append(r.attempts, n)
}

func (r *recorder) Engine(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.engine = append(r.engine, err)
}

func TestObserver(t *testing.T) {
	errGone := fmt.Errorf("pull: %w: read progress: unexpected EOF", engine.ErrUnreachable)
	tests := []struct {
		name        string
		engine      *fakeEngine
		opts        Options
		attempts    []int
		unreachable int // engine reports that say it could not be reached
		answered    int // engine reports that say it answered
		timedOut    bool
	}{
		// Besides presence and pulls, the engine answers the platform
		// checks: its own platform, the registry's (before a pull) and the
		// image's (after one, or when present).
		{name: "present: three answers, no attempt", engine: &fakeEngine{present: true}, answered: 3},
		{name: "registry faults are attempts, and the engine answered each", engine: &fakeEngine{verifies: true, pulls: failing(2, errRefused)},
			attempts: []int{1, 2, 3}, answered: 9},
		{name: "an engine going away is reported as unreachable", engine: &fakeEngine{verifies: true, pulls: failing(1, errGone)},
			attempts: []int{1, 2}, unreachable: 1, answered: 7},
		{name: "the call's own timeout is a timeout, not an unreachable engine", engine: &fakeEngine{pulls: []attempt{stall, stall, stall}},
			opts: Options{Timeout: 500 * time.Millisecond}, attempts: []int{1}, answered: 3, timedOut: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			tt.opts.Observer = rec
			p := &Puller{
				Engine:      tt.engine,
				Credentials: &credentials.Resolver{Config: &config.Config{}, DockerConfigDir: t.TempDir()},
				Log:         zap.NewNop(),
				Backoff:     fastBackoff,
			}
			r := p.Ensure(context.Background(), target, tt.opts)
			if got := errors.Is(r.Err, ErrTimedOut); got != tt.timedOut {
				t.Errorf("timed out = %v (err %v), want %v", got, r.Err, tt.timedOut)
			}
			if fmt.Sprint(rec.attempts) != fmt.Sprint(tt.attempts) || r.Attempts != len(tt.attempts) {
				t.Errorf("attempts reported %v, result says %d, want %v", rec.attempts, r.Attempts, tt.attempts)
			}
			unreachable, answered := 0, 0
			for _, err := range rec.engine {
				if err == nil {
					answered++
				} else if errors.Is(err, engine.ErrUnreachable) {
					unreachable++
				} else {
					t.Errorf("engine reported with %v, want nil or an unreachable engine", err)
				}
			}
			if unreachable != tt.unreachable || answered != tt.answered {
				t.Errorf("engine reports: %d unreachable, %d answered; want %d, %d", unreachable, answered, tt.unreachable, tt.answered)
			}
		})
	}
}

func TestHasDigest(t *testing.T) {
	tests := []struct {
		repoDigests []string
		ref         string
		want        bool
	}{
		{[]string{"harbor.example:8443/proj/adapter@" + digest}, "harbor.example:8443/proj/adapter@" + digest, true},
		{[]string{"myorg/adapter@" + digest}, "docker.io/myorg/adapter@" + digest, true},
		{[]string{"adapter@" + digest}, "docker.io/library/adapter@" + digest, true},
		{[]string{"harbor.example/other@" + digest}, "harbor.example/proj/adapter@" + digest, false},
		{[]string{"harbor.example/proj/adapter@sha256:" + strings.Repeat("f", 64)}, "harbor.example/proj/adapter@" + digest, false},
		{nil, "harbor.example/proj/adapter@" + digest, false},
	}
	for _, tt := range tests {
		if got := HasDigest(tt.repoDigests, tt.ref); got != tt.want {
			t.Errorf("HasDigest(%v, %s) = %v, want %v", tt.repoDigests, tt.ref, got, tt.want)
		}
	}
}

// rotatingEngine is a registry whose accepted password changes: it accepts
// only accept, at login and at pull, and rotates to next right after a
// login when next is set (the token expires between login and pull).
type rotatingEngine struct {
	fakeEngine
	accept, next string
}

func (e *rotatingEngine) Login(ctx context.Context, a engine.Auth) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.logins++
	if a.Password != e.accept {
		return errDenied
	}
	if e.next != "" {
		e.accept, e.next = e.next, ""
	}
	return nil
}

func (e *rotatingEngine) Pull(ctx context.Context, ref string, a *engine.Auth, progress func(engine.Progress)) error {
	e.mu.Lock()
	ok := a != nil && a.Password == e.accept
	e.mu.Unlock()
	if !ok {
		e.mu.Lock()
		e.pullCalls++
		e.mu.Unlock()
		return fmt.Errorf("pull %s: %w: unauthorized: authentication required", ref, engine.ErrUnauthorized)
	}
	return e.fakeEngine.Pull(ctx, ref, a, progress)
}

// TestEnsureRenewsRejectedToken: a password_command's token that the
// registry rejects, at login or at pull, is replaced by a fresh one once;
// a source that gives the same password again is not tried twice.
func TestEnsureRenewsRejectedToken(t *testing.T) {
	dir := t.TempDir()
	counter := filepath.Join(dir, "n")
	token := filepath.Join(dir, "token")
	body := "#!/bin/sh\nn=$(cat '" + counter + "' 2>/dev/null || echo 0); n=$((n+1)); echo $n > '" + counter + "'; echo \"token-$n\"\n"
	if err := os.WriteFile(token, []byte(body), 0o700); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name           string
		engine         *rotatingEngine
		command        []string
		want           Status
		logins, pulls  int
		wantErrText    string
		wantSourceText string
	}{
		{name: "expired at login", engine: &rotatingEngine{fakeEngine: fakeEngine{verifies: true}, accept: "token-2"},
			command: []string{token}, want: Pulled, logins: 2, pulls: 1},
		{name: "expired between login and pull", engine: &rotatingEngine{fakeEngine: fakeEngine{verifies: true}, accept: "token-1", next: "token-2"},
			command: []string{token}, want: Pulled, logins: 2, pulls: 2},
		{name: "still rejected after renewal", engine: &rotatingEngine{accept: "token-9"},
			command: []string{token}, want: Failed, logins: 2, wantErrText: `login to harbor.example:8443 as "AWS" (credentials from password_command ` + token},
		{name: "same token again", engine: &rotatingEngine{accept: "other"},
			command: []string{"echo", "static"}, want: Failed, logins: 1, wantErrText: "(asked again, password_command echo gave the same password)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			os.Remove(counter)
			cfg := &config.Config{Registries: []config.Registry{{Host: target.Registry, Username: "AWS", PasswordCommand: tt.command}}}
			p := &Puller{
				Engine:      tt.engine,
				Credentials: &credentials.Resolver{Config: cfg, DockerConfigDir: dir},
				Log:         zap.NewNop(),
				Backoff:     fastBackoff,
			}
			r := p.Ensure(context.Background(), target, Options{})
			if r.Status != tt.want {
				t.Fatalf("status = %s (err %v), want %s", r.Status, r.Err, tt.want)
			}
			if tt.want == Failed && (!errors.Is(r.Err, engine.ErrUnauthorized) || !strings.Contains(r.Err.Error(), tt.wantErrText)) {
				t.Errorf("error %v, want a rejection with %q", r.Err, tt.wantErrText)
			}
			if tt.engine.logins != tt.logins || tt.engine.pullCalls != tt.pulls {
				t.Errorf("logins, pulls = %d, %d; want %d, %d", tt.engine.logins, tt.engine.pullCalls, tt.logins, tt.pulls)
			}
		})
	}
}

// TestEnsureDockerHub: every way a pak names Docker Hub (the SDK 0.x
// namespace, SDK 1.x's registry.hub.docker.com, docker.io) uses Docker Hub's
// login, wherever the registries list spells it, and pulls the reference
// exactly as the pak gives it.
func TestEnsureDockerHub(t *testing.T) {
	paks := map[string]struct{ registry, repository, ref string }{
		"0.x namespace": {"myorg", "adapter", "myorg/adapter@" + digest},
		"1.x":           {"registry.hub.docker.com", "myorg/adapter", "registry.hub.docker.com/myorg/adapter@" + digest},
		"docker.io":     {"docker.io", "myorg/adapter", "docker.io/myorg/adapter@" + digest},
	}
	for _, entryHost := range []string{"docker.io", "registry.hub.docker.com", "index.docker.io"} {
		for name, pk := range paks {
			t.Run(entryHost+" entry, "+name+" pak", func(t *testing.T) {
				img := pak.Image{File: "x.pak", Format: pak.FormatConf, AdapterKind: "A", ConfPath: "A.conf", Registry: pk.registry, Repository: pk.repository, Digest: digest}
				tgt, err := img.Resolve("")
				if err != nil {
					t.Fatal(err)
				}
				eng := &fakeEngine{verifies: true}
				cfg := &config.Config{Registries: []config.Registry{{Host: entryHost, Username: "hubuser", PasswordEnv: "PW"}}}
				p := &Puller{Engine: eng, Log: zap.NewNop(), Backoff: fastBackoff,
					Credentials: &credentials.Resolver{Config: cfg, DockerConfigDir: t.TempDir(), Getenv: func(string) string { return testPassword }}}
				r := p.Ensure(context.Background(), tgt, Options{})
				if r.Status != Pulled || r.Target.Reference != pk.ref {
					t.Fatalf("status %s, reference %q (err %v), want pulled %q", r.Status, r.Target.Reference, r.Err, pk.ref)
				}
				if len(eng.auths) != 1 || eng.auths[0] == nil || eng.auths[0].Username != "hubuser" || eng.auths[0].ServerAddress != "https://index.docker.io/v1/" {
					t.Fatalf("pull auth %+v, want hubuser for https://index.docker.io/v1/", eng.auths)
				}
			})
		}
	}
}
