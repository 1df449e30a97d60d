// Package pull makes sure that the image a pack references is present in the
// engine: it checks for it, finds the registry login, logs in, pulls by
// digest with retries, and verifies the result. The one-shot command and the
// agent both use it.
package pull

import (
	"context"
	"errors"
	"fmt"
	"strings"
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
	// Interrupted is the one-shot's status of a pak it did not finish
	// because the run was interrupted (Ctrl-C or SIGTERM).
	Interrupted Status = "interrupted"
)

// ErrStalled is wrapped when a pull made no progress for the stall timeout.
// It counts as transient: the pull is cancelled and tried again.
var ErrStalled = errors.New("pull stalled")

// ErrNotVerified is wrapped when the engine reported a successful pull but
// does not hold the reference afterwards.
var ErrNotVerified = errors.New("image not found in the engine after the pull")

// ErrTimedOut is wrapped when an Ensure call ended because its Timeout (or
// its context's deadline) passed: the call ran out of time, which says
// nothing about whether the engine answers.
var ErrTimedOut = errors.New("timed out")

// errSameCredential says that a credential source, asked again after the
// registry rejected its login, gave the same one.
var errSameCredential = errors.New("same credential again")

// Options tune one Ensure call.
type Options struct {
	Force        bool          // pull even when the image is present
	DryRun       bool          // check presence, credentials, the digest and its platform; pull nothing
	Timeout      time.Duration // bounds the whole call, retries included; 0 means only ctx does
	StallTimeout time.Duration // cancel and retry a pull without progress for this long; 0 disables
	// LoginHint says how to add a login, for the error of an anonymous pull
	// that the registry refused; empty means the one-shot's hint.
	LoginHint string
	// Observer, when set, is told about the call as it goes: each pull
	// attempt, and whether the engine answered each request.
	Observer Observer
}

// Observer is told what one Ensure call does while it runs, so that a caller
// keeping state (the agent) need not wrap the engine to learn it. Its
// methods are called from the goroutine running Ensure and must not block.
type Observer interface {
	// PullAttempt is called before each pull attempt; n counts from 1.
	PullAttempt(n int)
	// Engine is called after each request to the engine: with nil when the
	// engine answered (whatever it said about the image or the registry),
	// with the error when it could not be reached (engine.ErrUnreachable).
	// A request cut short by the call's own context is not reported.
	Engine(err error)
	// Retrying is called when a try (what is "login", "pull", or a
	// platform check's "registry inspect", "engine version" or "image
	// inspect") failed with err and will be made again after a wait.
	Retrying(what string, err error)
}

// reportEngine tells o's Observer how the engine met one request.
func (o Options) reportEngine(err error) {
	switch {
	case o.Observer == nil:
	case err == nil:
		o.Observer.Engine(nil)
	case errors.Is(err, engine.ErrUnreachable):
		o.Observer.Engine(err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
	default:
		o.Observer.Engine(nil)
	}
}

// Engine is what a Puller asks of a container engine (see engine.Engine,
// which NewDocker provides).
type Engine interface {
	Login(ctx context.Context, auth engine.Auth) error
	Pull(ctx context.Context, ref string, auth *engine.Auth, progress func(engine.Progress)) error
	RepoDigests(ctx context.Context, ref string) ([]string, error)
	Platform(ctx context.Context) (engine.Platform, error)
	Distribution(ctx context.Context, ref string, auth *engine.Auth) (engine.Distribution, error)
	ImagePlatform(ctx context.Context, ref string) (engine.Platform, error)
}

// Puller ensures images are present in one engine.
type Puller struct {
	Engine      Engine
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
	if r.Err != nil && !errors.Is(r.Err, ErrTimedOut) && ranOutOfTime(ctx, r.Err) {
		r.Err = fmt.Errorf("%w: %w", ErrTimedOut, r.Err)
	}
	r.Duration = time.Since(start)
	return r
}

// anonymousRefused is the error of a pull without a login that the registry
// refused: it matches engine.ErrUnauthorized (for the exit code), but says
// what is missing rather than that credentials were rejected.
type anonymousRefused struct {
	msg string
	err error
}

func (e *anonymousRefused) Error() string { return e.msg }
func (e *anonymousRefused) Unwrap() error { return e.err }

// noLogin turns err, a refusal of an anonymous pull from registry, into an
// error naming the missing login and how to add it.
func noLogin(err error, registry, hint string) error {
	if hint == "" {
		hint = "add it to registries in the configuration, or pass --registry " + registry + " --username U --password-stdin"
	}
	msg := strings.Replace(err.Error(), engine.ErrUnauthorized.Error(), "the registry refused a pull without a login", 1)
	return &anonymousRefused{msg: fmt.Sprintf("%s (prepull has no login for %s: %s)", msg, registry, hint), err: err}
}

// ranOutOfTime tells whether err ended a call because ctx's deadline passed
// or was too near for another try: the retries stop early, before the
// deadline, rather than start a try that cannot finish.
func ranOutOfTime(ctx context.Context, err error) bool {
	if _, ok := ctx.Deadline(); !ok || errors.Is(ctx.Err(), context.Canceled) {
		return false
	}
	return errors.Is(ctx.Err(), context.DeadlineExceeded) || Transient(err)
}

func (p *Puller) ensure(ctx context.Context, t pak.Target, o Options, r *Result) (Status, error) {
	log := p.Log.With(zap.String("pak", t.File), zap.String("reference", t.Reference))
	for _, w := range t.Warnings {
		log.Warn(w)
	}

	present, err := p.present(ctx, t.Reference, o)
	if err != nil {
		return Failed, err
	}
	if present && !o.Force {
		err := p.checkLocal(ctx, log, o, t.Reference)
		switch {
		case err == nil:
			log.Debug("image already present")
			return Present, nil
		case !errors.Is(err, engine.ErrNotPresent):
			return Failed, err
		}
		// Removed between the two looks (an image prune, say): pulled below.
		log.Info("image removed while it was checked, pulling it")
	}

	installedCA, err := p.ensureCA(log, t)
	if err != nil {
		return Failed, err
	}

	var (
		cred    credentials.Credential
		auth    *engine.Auth
		renewed bool
	)
	explain := func(err error) error {
		switch {
		case errors.Is(err, engine.ErrCertificate):
			err = explainCertificate(err, t, p.CertsDir, installedCA)
		case errors.Is(err, engine.ErrUnauthorized) && cred.Anonymous():
			err = noLogin(err, t.Registry, o.LoginHint)
		}
		for _, w := range t.Warnings {
			// The pak most likely names the wrong image: say so with the error.
			err = fmt.Errorf("%w; note: %s", err, w)
		}
		return err
	}
	// login finds the registry's credential and logs in with it. After a
	// rejection, prev is the rejected credential: the same one again is
	// not tried twice.
	login := func(prev *credentials.Credential) error {
		c, err := p.Credentials.For(t.Registry)
		if err != nil {
			return err
		}
		if prev != nil && c.Password == prev.Password && c.IdentityToken == prev.IdentityToken {
			return errSameCredential
		}
		cred, auth = c, nil
		r.CredentialSource = cred.Source
		for _, w := range cred.Warnings {
			log.Warn(w)
		}
		log.Info("using registry credentials", zap.String("registry", t.Registry), zap.String("credential_source", cred.Source))
		if cred.Anonymous() {
			return nil
		}
		auth = &engine.Auth{
			ServerAddress: credentials.ServerAddress(t.Registry),
			Username:      cred.Username,
			Password:      cred.Password,
			IdentityToken: cred.IdentityToken,
		}
		if err := p.retry(ctx, log, o, "login", func(ctx context.Context) error {
			err := p.Engine.Login(ctx, *auth)
			o.reportEngine(err)
			return err
		}); err != nil {
			if errors.Is(err, engine.ErrUnauthorized) && cred.Suspect != "" {
				err = fmt.Errorf("%w; note: %s", err, cred.Suspect)
			}
			return &LoginError{Registry: t.Registry, Username: cred.Username, Source: cred.Source, Err: explain(err)}
		}
		return nil
	}
	// renew says whether to log in once more after err: when the registry
	// rejected a credential that may differ when asked again, such as a
	// password_command's token that expired.
	renew := func(err error) bool {
		if renewed || !cred.Renewable || !errors.Is(err, engine.ErrUnauthorized) {
			return false
		}
		renewed = true
		log.Warn("registry rejected the login, asking its source for a fresh one", zap.String("registry", t.Registry),
			zap.String("credential_source", cred.Source), zap.Error(err))
		return true
	}

	// relogin logs in once more after the rejection rejected.
	relogin := func(rejected error) error {
		prev := cred
		err := login(&prev)
		if errors.Is(err, errSameCredential) {
			return fmt.Errorf("%w (asked again, %s gave the same password)", rejected, prev.Source)
		}
		return err
	}

	err = login(nil)
	if renew(err) {
		err = relogin(err)
	}
	if err != nil {
		return Failed, err
	}
	if err := p.checkRemote(ctx, log, o, t.Reference, auth); err != nil {
		return Failed, explain(err)
	}
	if o.DryRun {
		return WouldPull, nil
	}

	var last error // what the last attempt that ended before the timeout met
	err = p.retry(ctx, log, o, "pull", func(ctx context.Context) error {
		r.Attempts++
		if o.Observer != nil {
			o.Observer.PullAttempt(r.Attempts)
		}
		err := p.pullOnce(ctx, t.Reference, auth, o.StallTimeout)
		o.reportEngine(err)
		if renew(err) {
			if err = relogin(err); err == nil {
				r.Attempts++
				if o.Observer != nil {
					o.Observer.PullAttempt(r.Attempts)
				}
				err = p.pullOnce(ctx, t.Reference, auth, o.StallTimeout)
				o.reportEngine(err)
			}
		}
		if err != nil && ctx.Err() == nil {
			last = err
		}
		return err
	})
	if err != nil {
		if last != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) && errors.Is(err, context.DeadlineExceeded) {
			// The timeout cut the last attempt short, which tells nothing;
			// the attempt before says what went wrong (a stall, say).
			err = fmt.Errorf("%w; then %w after %d attempts", last, ErrTimedOut, r.Attempts)
		}
		// The engine's errors name the operation and the reference already.
		return Failed, explain(err)
	}

	present, err = p.present(ctx, t.Reference, o)
	if err != nil {
		return Failed, err
	}
	if !present {
		return Failed, fmt.Errorf("%s: %w", t.Reference, ErrNotVerified)
	}
	if err := p.checkLocal(ctx, log, o, t.Reference); err != nil {
		return Failed, err
	}
	log.Info("image pulled", zap.Int("attempts", r.Attempts))
	return Pulled, nil
}

// ensureCA installs the ca_file of the registries entry for t's registry,
// if any, under CertsDir, and returns the installed file's path; empty when
// there is no ca_file or the Puller installs no CAs. The folder is the
// entry's host in canonical form (pak.CanonicalRegistry), never a spelling
// the pak chose; when Docker Engine will look the CA up under another name
// for this pak's reference, a warning says so.
func (p *Puller) ensureCA(log *zap.Logger, t pak.Target) (string, error) {
	if p.Credentials == nil || p.Credentials.Config == nil {
		return "", nil
	}
	entry, ok := p.Credentials.Config.Lookup(t.Registry)
	if !ok || entry.CAFile == "" {
		return "", nil
	}
	if p.CertsDir == "" {
		log.Warn("ca_file is set but this command does not install CAs; Docker Engine reads the CA from its certs.d folder",
			zap.String("registry", entry.Host), zap.String("ca_file", entry.CAFile))
		return "", nil
	}
	folder := pak.CanonicalRegistry(entry.Host)
	path, changed, err := installCA(p.CertsDir, folder, entry.CAFile)
	if err != nil {
		return "", err
	}
	if changed {
		log.Info("installed the registry's CA where Docker Engine reads it",
			zap.String("registry", entry.Host), zap.String("ca_file", entry.CAFile), zap.String("path", path))
	} else {
		log.Debug("registry CA already installed", zap.String("registry", entry.Host), zap.String("path", path))
	}
	if host := engineHost(t); host != folder {
		log.Warn(fmt.Sprintf("the pak spells the registry %s and Docker Engine reads the CA for it from %s; prepull installs the CA only under the configured registry's canonical name, as %s: "+
			"rebuild the pak with REGISTRY=%s, or place the CA there yourself", host, CAPath(p.CertsDir, host), path, folder),
			zap.String("registry", entry.Host))
	}
	return path, nil
}

// engineHost returns the registry host Docker Engine contacts for t's
// reference, spelled as the engine names its certs.d folder: the host as the
// reference writes it, docker.io for Docker Hub's own names (a namespace,
// docker.io, index.docker.io).
func engineHost(t pak.Target) string {
	if named, err := reference.ParseNormalizedNamed(t.Reference); err == nil {
		return reference.Domain(named)
	}
	return t.Registry
}

// retry runs fn with the Puller's backoff while its errors are transient.
func (p *Puller) retry(ctx context.Context, log *zap.Logger, o Options, what string, fn func(context.Context) error) error {
	return retry.Do(ctx, p.Backoff, Transient, func(attempt int, err error, delay time.Duration) {
		log.Warn(what+" failed, will retry", zap.Int("attempt", attempt), zap.Duration("retry_in", delay), zap.Error(err))
		if o.Observer != nil {
			o.Observer.Retrying(what, err)
		}
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
	return p.present(ctx, ref, Options{})
}

// present is Present, reporting each request to o's Observer.
func (p *Puller) present(ctx context.Context, ref string, o Options) (bool, error) {
	var digests []string
	err := retry.Do(ctx, p.Backoff, engine.Transient, func(attempt int, err error, delay time.Duration) {
		p.Log.Warn("docker engine not answering, will retry", zap.Int("attempt", attempt), zap.Duration("retry_in", delay), zap.Error(err))
	}, func(ctx context.Context) error {
		var err error
		digests, err = p.Engine.RepoDigests(ctx, ref)
		o.reportEngine(err)
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
