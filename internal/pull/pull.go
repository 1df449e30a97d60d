// Package pull makes sure that the image a pack references is present in the
// engine: it checks for it, finds the registry login, logs in, pulls by
// digest with retries, and verifies the result. The one-shot command and the
// agent both use it.
package pull

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/distribution/reference"
	"go.uber.org/zap"

	"github.com/prepull/prepull/internal/credentials"
	"github.com/prepull/prepull/internal/engine"
	"github.com/prepull/prepull/internal/pak"
	"github.com/prepull/prepull/internal/retry"
)

// Status is the outcome of ensuring one image.
type Status string

// The statuses a Result can have. Their strings are part of the JSON output.
const (
	Pulled    Status = "pulled"
	Present   Status = "present"
	WouldPull Status = "would-pull"
	Failed    Status = "failed"
)

// ErrStalled is wrapped when a pull made no progress for the stall timeout.
// It counts as transient: the pull is cancelled and tried again.
var ErrStalled = errors.New("pull stalled")

// ErrNotVerified is wrapped when the engine reported a successful pull but
// does not hold the reference afterwards.
var ErrNotVerified = errors.New("image not found in the engine after the pull")

// Options tune one Ensure call.
type Options struct {
	Force        bool          // pull even when the image is present
	DryRun       bool          // check presence and credentials, pull nothing
	Timeout      time.Duration // bounds the whole call, retries included; 0 means only ctx does
	StallTimeout time.Duration // cancel and retry a pull without progress for this long; 0 disables
}

// Puller ensures images are present in one engine.
type Puller struct {
	Engine      engine.Engine
	Credentials *credentials.Resolver
	Log         *zap.Logger
	Backoff     retry.Backoff
	// Progress, when set, is called at the start of each pull attempt and
	// returns a sink for its progress events and a function called when the
	// attempt ends.
	Progress func(ref string) (sink func(engine.Progress), done func())
	// CertsDir is the folder Docker Engine reads registry CAs from (the
	// configuration's certs_dir, /etc/docker/certs.d by default). When set,
	// the ca_file of a registry's entry in the registries list is installed
	// there as <CertsDir>/<host[:port]>/ca.crt before the login. Empty
	// installs nothing.
	CertsDir string
}

// Result is the outcome of one Ensure call.
type Result struct {
	Target           pak.Target
	Status           Status
	Duration         time.Duration
	Attempts         int    // pull attempts made
	CredentialSource string // where the login came from, never the secret
	Err              error
}

// Transient reports whether err is worth trying again.
func Transient(err error) bool {
	return errors.Is(err, ErrStalled) || engine.Transient(err)
}

// Ensure makes sure the image t names is present, pulling it when needed.
func (p *Puller) Ensure(ctx context.Context, t pak.Target, o Options) Result {
	start := time.Now()
	if o.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Timeout)
		defer cancel()
	}
	r := Result{Target: t}
	r.Status, r.Err = p.ensure(ctx, t, o, &r)
	r.Duration = time.Since(start)
	return r
}

func (p *Puller) ensure(ctx context.Context, t pak.Target, o Options, r *Result) (Status, error) {
	log := p.Log.With(zap.String("pak", t.File), zap.String("reference", t.Reference))

	present, err := p.Present(ctx, t.Reference)
	if err != nil {
		return Failed, err
	}
	if present && !o.Force {
		log.Debug("image already present")
		return Present, nil
	}

	installedCA, err := p.ensureCA(log, t.Registry)
	if err != nil {
		return Failed, err
	}

	cred, err := p.Credentials.For(t.Registry)
	if err != nil {
		return Failed, err
	}
	r.CredentialSource = cred.Source
	for _, w := range cred.Warnings {
		log.Warn(w)
	}
	log.Info("using registry credentials", zap.String("registry", t.Registry), zap.String("source", cred.Source))
	explain := func(err error) error {
		switch {
		case errors.Is(err, engine.ErrCertificate):
			return explainCertificate(err, t.Registry, p.CertsDir, installedCA)
		case errors.Is(err, engine.ErrUnauthorized) && cred.Anonymous():
			return fmt.Errorf("%w (prepull has no login for %s: add it to registries in the configuration, or pass --registry %s --username U --password-stdin)", err, t.Registry, t.Registry)
		}
		return err
	}

	var auth *engine.Auth
	if !cred.Anonymous() {
		auth = &engine.Auth{
			ServerAddress: credentials.ServerAddress(t.Registry),
			Username:      cred.Username,
			Password:      cred.Password,
			IdentityToken: cred.IdentityToken,
		}
		if err := p.retry(ctx, log, "login", func(ctx context.Context) error { return p.Engine.Login(ctx, *auth) }); err != nil {
			return Failed, fmt.Errorf("login to %s as %q (credentials from %s): %w", t.Registry, cred.Username, cred.Source, explain(err))
		}
	}
	if o.DryRun {
		return WouldPull, nil
	}

	var last error // what the last attempt that ended before the timeout met
	err = p.retry(ctx, log, "pull", func(ctx context.Context) error {
		r.Attempts++
		err := p.pullOnce(ctx, t.Reference, auth, o.StallTimeout)
		if err != nil && ctx.Err() == nil {
			last = err
		}
		return err
	})
	if err != nil {
		if last != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) && errors.Is(err, context.DeadlineExceeded) {
			// The timeout cut the last attempt short, which tells nothing;
			// the attempt before says what went wrong (a stall, say).
			err = fmt.Errorf("%w; then timed out after %d attempts", last, r.Attempts)
		}
		// The engine's errors name the operation and the reference already.
		return Failed, explain(err)
	}

	present, err = p.Present(ctx, t.Reference)
	if err != nil {
		return Failed, err
	}
	if !present {
		return Failed, fmt.Errorf("%s: %w", t.Reference, ErrNotVerified)
	}
	log.Info("image pulled", zap.Int("attempts", r.Attempts))
	return Pulled, nil
}

// ensureCA installs the ca_file of host's registries entry, if any, under
// CertsDir, and returns the installed file's path; empty when there is no
// ca_file or the Puller installs no CAs.
func (p *Puller) ensureCA(log *zap.Logger, host string) (string, error) {
	if p.Credentials == nil || p.Credentials.Config == nil {
		return "", nil
	}
	entry, ok := p.Credentials.Config.Lookup(host)
	if !ok || entry.CAFile == "" {
		return "", nil
	}
	if p.CertsDir == "" {
		log.Warn("ca_file is set but this command does not install CAs; Docker Engine reads the CA from its certs.d folder",
			zap.String("registry", host), zap.String("ca_file", entry.CAFile))
		return "", nil
	}
	path, changed, err := installCA(p.CertsDir, host, entry.CAFile)
	if err != nil {
		return "", err
	}
	if changed {
		log.Info("installed the registry's CA where Docker Engine reads it",
			zap.String("registry", host), zap.String("ca_file", entry.CAFile), zap.String("path", path))
	} else {
		log.Debug("registry CA already installed", zap.String("registry", host), zap.String("path", path))
	}
	return path, nil
}

// retry runs fn with the Puller's backoff while its errors are transient.
func (p *Puller) retry(ctx context.Context, log *zap.Logger, what string, fn func(context.Context) error) error {
	return retry.Do(ctx, p.Backoff, Transient, func(attempt int, err error, delay time.Duration) {
		log.Warn(what+" failed, will retry", zap.Int("attempt", attempt), zap.Duration("delay", delay), zap.Error(err))
	}, fn)
}

// pullOnce makes one pull attempt, cancelling it when no progress event
// arrives for stall.
func (p *Puller) pullOnce(ctx context.Context, ref string, auth *engine.Auth, stall time.Duration) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	var sink func(engine.Progress)
	if p.Progress != nil {
		var done func()
		sink, done = p.Progress(ref)
		defer done()
	}
	var watchdog *time.Timer
	if stall > 0 {
		watchdog = time.AfterFunc(stall, func() { cancel(ErrStalled) })
		defer watchdog.Stop()
	}
	err := p.Engine.Pull(ctx, ref, auth, func(ev engine.Progress) {
		if watchdog != nil {
			watchdog.Reset(stall)
		}
		if sink != nil {
			sink(ev)
		}
	})
	if err != nil && errors.Is(context.Cause(ctx), ErrStalled) {
		return fmt.Errorf("pull %s: %w: no progress for %v", ref, ErrStalled, stall)
	}
	return err
}

// Present reports whether the engine holds ref, an exact name@digest
// reference, with that digest among the image's repo digests. An engine that
// is briefly unreachable is retried until ctx ends.
func (p *Puller) Present(ctx context.Context, ref string) (bool, error) {
	var digests []string
	err := retry.Do(ctx, p.Backoff, engine.Transient, func(attempt int, err error, delay time.Duration) {
		p.Log.Warn("docker engine not answering, will retry", zap.Int("attempt", attempt), zap.Duration("delay", delay), zap.Error(err))
	}, func(ctx context.Context) error {
		var err error
		digests, err = p.Engine.RepoDigests(ctx, ref)
		return err
	})
	switch {
	case errors.Is(err, engine.ErrNotPresent):
		return false, nil
	case err != nil:
		return false, err
	}
	return HasDigest(digests, ref), nil
}

// HasDigest reports whether repoDigests, as the engine lists them, hold ref
// (compared in normalized form, so "docker.io/library/x" equals "x").
func HasDigest(repoDigests []string, ref string) bool {
	want, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return false
	}
	for _, rd := range repoDigests {
		got, err := reference.ParseNormalizedNamed(rd)
		if err == nil && got.String() == want.String() {
			return true
		}
	}
	return false
}
