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

// Engine is what a Puller asks of a container engine (engine.Docker
// provides it).
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
	// RegistryAttempts bounds the attempts in a row of one step (login,
	// registry inspect, pull) that cannot reach the registry; 0 means
	// DefaultRegistryAttempts. A pull attempt that moved bytes starts the
	// count again: a registry that answers may take the whole timeout.
	RegistryAttempts int
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
	// DesktopOS, when set, is the system ("windows", "darwin") of the
	// Docker Desktop whose engine pulls: its engine trusts the CAs of that
	// system's trust store, not a certs.d folder, so no CA is installed and
	// a ca_file or an untrusted certificate gets DesktopTrust's advice.
	DesktopOS string
	// Namer, when set, gives every image found present or pulled its
	// local name (see LocalName), so that a plain image prune keeps it.
	Namer Namer
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
	if r.Err == nil && p.Namer != nil && (r.Status == Present || r.Status == Pulled) {
		p.name(ctx, p.Log.With(zap.String("pak", t.File), zap.String("reference", t.Reference)), t)
	}
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

// NoLogin turns err, a refusal of an anonymous pull from registry, into an
// error naming the missing login and how to add it (hint, or the one-shot's
// ways).
func NoLogin(err error, registry, hint string) error {
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

// session is one Ensure call's work on one image: what it logs with, the
// result it fills, and the registry login it holds, which a rejection may
// renew once.
type session struct {
	p           *Puller
	t           pak.Target
	o           Options
	r           *Result
	log         *zap.Logger
	installedCA string // the CA file ensureCA installed, for explain

	cred    credentials.Credential
	auth    *engine.Auth // nil for an anonymous pull
	renewed bool         // the login was renewed once already
}

func (p *Puller) ensure(ctx context.Context, t pak.Target, o Options, r *Result) (Status, error) {
	s := &session{p: p, t: t, o: o, r: r, log: p.Log.With(zap.String("pak", t.File), zap.String("reference", t.Reference))}
	for _, w := range t.Warnings {
		s.log.Warn(w)
	}
	if present, err := s.present(ctx); err != nil || present {
		if err != nil {
			return Failed, err
		}
		return Present, nil
	}
	var err error
	if s.installedCA, err = p.ensureCA(s.log, t); err != nil {
		return Failed, err
	}
	if err := s.logIn(ctx); err != nil {
		return Failed, err
	}
	if err := p.checkRemote(ctx, s.log, o, t.Reference, s.auth); err != nil {
		return Failed, s.explain(err)
	}
	if o.DryRun {
		return WouldPull, nil
	}
	if err := s.pull(ctx); err != nil {
		return Failed, err
	}
	if err := s.verify(ctx); err != nil {
		return Failed, err
	}
	s.log.Info("image pulled", zap.Int("attempts", r.Attempts))
	return Pulled, nil
}

// present tells whether the image is present and fit for this engine, so
// that nothing is to be pulled; never with Force.
func (s *session) present(ctx context.Context) (bool, error) {
	present, err := s.p.present(ctx, s.t.Reference, s.o)
	if err != nil || !present || s.o.Force {
		return false, err
	}
	err = s.p.checkLocal(ctx, s.log, s.o, s.t.Reference)
	switch {
	case err == nil:
		s.log.Debug("image already present")
		return true, nil
	case !errors.Is(err, engine.ErrNotPresent):
		return false, err
	}
	// Removed between the two looks (an image prune, say): pulled next.
	s.log.Info("image removed while it was checked, pulling it")
	return false, nil
}

// explain adds to err what the user needs to fix it: the CA to install, the
// login to add, the pak's own warnings.
func (s *session) explain(err error) error {
	switch {
	case errors.Is(err, engine.ErrCertificate) && s.p.DesktopOS != "":
		err = explainDesktopCertificate(err, s.t, s.p.DesktopOS, s.p.caFile(s.t))
	case errors.Is(err, engine.ErrCertificate):
		err = explainCertificate(err, s.t, s.p.CertsDir, s.installedCA)
	case errors.Is(err, engine.ErrUnauthorized) && s.cred.Anonymous():
		err = NoLogin(err, s.t.Registry, s.o.LoginHint)
	case errors.Is(err, engine.ErrRegistryUnreachable):
		err = registryUnreachable(err, s.t.Registry)
	}
	for _, w := range s.t.Warnings {
		// The pak most likely names the wrong image: say so with the error.
		err = fmt.Errorf("%w; note: %s", err, w)
	}
	return err
}

// logIn logs in to the registry, once more with a fresh credential when the
// first was rejected and its source may give another.
func (s *session) logIn(ctx context.Context) error {
	err := s.login(ctx, nil)
	if s.renew(err) {
		err = s.relogin(ctx, err)
	}
	return err
}

// login finds the registry's credential and logs in with it. After a
// rejection, prev is the rejected credential: the same one again is not
// tried twice.
func (s *session) login(ctx context.Context, prev *credentials.Credential) error {
	c, err := s.p.Credentials.For(ctx, s.t.Registry)
	if err != nil {
		return err
	}
	if prev != nil && c.Password == prev.Password && c.IdentityToken == prev.IdentityToken {
		return errSameCredential
	}
	s.cred, s.auth = c, nil
	s.r.CredentialSource = c.Source
	for _, w := range c.Warnings {
		s.log.Warn(w)
	}
	s.log.Info("using registry credentials", zap.String("registry", s.t.Registry), zap.String("credential_source", c.Source))
	if c.Anonymous() {
		return nil
	}
	s.auth = &engine.Auth{
		ServerAddress: credentials.ServerAddress(s.t.Registry),
		Username:      c.Username,
		Password:      c.Password,
		IdentityToken: c.IdentityToken,
	}
	err = s.p.retry(ctx, s.log, s.o, "login", func(ctx context.Context) error {
		err := s.p.Engine.Login(ctx, *s.auth)
		s.o.reportEngine(err)
		return err
	})
	if err == nil {
		return nil
	}
	if errors.Is(err, engine.ErrUnauthorized) && c.Suspect != "" {
		err = fmt.Errorf("%w; note: %s", err, c.Suspect)
	}
	return &LoginError{Registry: s.t.Registry, Username: c.Username, Source: c.Source, Err: s.explain(err)}
}

// renew says whether to log in once more after err: when the registry
// rejected a credential that may differ when asked again, such as a
// password_command's token that expired. It says so once per call.
func (s *session) renew(err error) bool {
	if s.renewed || !s.cred.Renewable || !errors.Is(err, engine.ErrUnauthorized) {
		return false
	}
	s.renewed = true
	s.log.Warn("registry rejected the login, asking its source for a fresh one", zap.String("registry", s.t.Registry),
		zap.String("credential_source", s.cred.Source), zap.Error(err))
	return true
}

// relogin logs in once more after the registry rejected the login with
// rejected.
func (s *session) relogin(ctx context.Context, rejected error) error {
	prev := s.cred
	err := s.login(ctx, &prev)
	if errors.Is(err, errSameCredential) {
		return fmt.Errorf("%w (asked again, %s gave the same password)", rejected, prev.Source)
	}
	return err
}

// pull pulls the image, retrying transient failures.
func (s *session) pull(ctx context.Context) error {
	var last error // what the last attempt that ended before the timeout met
	err := s.p.retry(ctx, s.log, s.o, "pull", func(attemptCtx context.Context) error {
		err := s.attempt(ctx, attemptCtx)
		if err != nil && attemptCtx.Err() == nil {
			last = err
		}
		return err
	})
	if err == nil {
		return nil
	}
	if last != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) && errors.Is(err, context.DeadlineExceeded) {
		// The timeout cut the last attempt short, which tells nothing;
		// the attempt before says what went wrong (a stall, say).
		err = fmt.Errorf("%w; then %w after %d attempts", last, ErrTimedOut, s.r.Attempts)
	}
	// The engine's errors name the operation and the reference already.
	return s.explain(err)
}

// attempt makes one pull attempt in attemptCtx and, when the registry
// rejected a login its source may renew, logs in again (in ctx, the
// call's) and makes one more.
func (s *session) attempt(ctx, attemptCtx context.Context) error {
	err := s.pullOnce(attemptCtx)
	if s.renew(err) {
		if err = s.relogin(ctx, err); err == nil {
			err = s.pullOnce(attemptCtx)
		}
	}
	return err
}

// pullOnce counts and makes one pull.
func (s *session) pullOnce(ctx context.Context) error {
	s.r.Attempts++
	if s.o.Observer != nil {
		s.o.Observer.PullAttempt(s.r.Attempts)
	}
	err := s.p.pullOnce(ctx, s.t.Reference, s.auth, s.o.StallTimeout)
	s.o.reportEngine(err)
	return err
}

// verify checks that the engine holds the image pulled, for its platform.
func (s *session) verify(ctx context.Context) error {
	present, err := s.p.present(ctx, s.t.Reference, s.o)
	if err != nil {
		return err
	}
	if !present {
		return fmt.Errorf("%s: %w", s.t.Reference, ErrNotVerified)
	}
	return s.p.checkLocal(ctx, s.log, s.o, s.t.Reference)
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
	if p.DesktopOS != "" {
		log.Warn("ca_file is set but Docker Desktop does not read CAs from a folder prepull could write: "+DesktopTrust(p.DesktopOS, entry.CAFile),
			zap.String("registry", entry.Host), zap.String("ca_file", entry.CAFile))
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

// caFile returns the ca_file of the registries entry for t's registry,
// empty when there is none.
func (p *Puller) caFile(t pak.Target) string {
	if p.Credentials == nil || p.Credentials.Config == nil {
		return ""
	}
	entry, _ := p.Credentials.Config.Lookup(t.Registry)
	return entry.CAFile
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

// DefaultRegistryAttempts is how many attempts in a row that cannot reach
// the registry a step makes before it gives up: with retry.Default's
// backoff (0.5 s doubling, jittered to half or all of it) about half a
// minute to a minute.
const DefaultRegistryAttempts = 8

// moved marks the error of a pull attempt that received bytes before it
// failed: the registry was reachable then.
type moved struct{ error }

func (m moved) Unwrap() error { return m.error }

// retry runs fn with the Puller's backoff while its errors are transient,
// and gives up after RegistryAttempts in a row that could not reach the
// registry, or at once when the registry's name does not resolve: the
// resolver's answer, which another attempt gets again (the agent still
// tries again later, as a name may not resolve yet at boot).
func (p *Puller) retry(ctx context.Context, log *zap.Logger, o Options, what string, fn func(context.Context) error) error {
	limit := p.RegistryAttempts
	if limit <= 0 {
		limit = DefaultRegistryAttempts
	}
	unreachable := 0
	retryable := func(err error) bool {
		var m moved
		switch {
		case errors.As(err, &m):
			unreachable = 0
		case errors.Is(err, engine.ErrRegistryUnreachable) && engine.NameNotFound(err):
			return false
		case errors.Is(err, engine.ErrRegistryUnreachable):
			unreachable++
			if unreachable >= limit {
				return false
			}
		default:
			unreachable = 0
		}
		return Transient(err)
	}
	err := retry.Do(ctx, p.Backoff, retryable, func(attempt int, err error, delay time.Duration) {
		log.Warn(what+" failed, will retry", zap.Int("attempt", attempt), zap.Duration("retry_in", delay), zap.Error(err))
		if o.Observer != nil {
			o.Observer.Retrying(what, err)
		}
	}, fn)
	if unreachable >= limit {
		return &registryGaveUp{err: err, attempts: unreachable}
	}
	return err
}

// registryGaveUp is a step's error after RegistryAttempts in a row that
// could not reach the registry.
type registryGaveUp struct {
	err      error
	attempts int
}

func (e *registryGaveUp) Error() string {
	return fmt.Sprintf("%v (gave up after %d attempts)", e.err, e.attempts)
}
func (e *registryGaveUp) Unwrap() error { return e.err }

// RegistryUnreachableError says that the Docker Engine could not connect to
// a registry: its host, the address tried, the system's error, and that the
// engine's own proxy settings, not prepull's, apply to that connection.
type RegistryUnreachableError struct {
	Registry string // the host the pak names
	Address  string // what the engine dialed or looked up, when its message says
	Cause    string // the system's error: "connect: connection refused"
	Attempts int    // attempts in a row that failed so, when it gave up
	// Unresolved says that the registry's name does not resolve, which
	// ends a step at its first attempt.
	Unresolved bool
	Err        error
}

func (e *RegistryUnreachableError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "registry %s unreachable", e.Registry)
	if e.Address != "" || e.Cause != "" {
		b.WriteString(": " + engine.Tried("Docker Engine", e.Address, e.Cause))
	}
	switch {
	case e.Unresolved:
		b.WriteString(" (the name does not resolve)")
	case e.Attempts > 0:
		fmt.Fprintf(&b, " (%d attempts)", e.Attempts)
	}
	b.WriteString("; the Docker Engine, not prepull, connects to the registry, so its proxy settings apply (systemctl show docker -p Environment)")
	return b.String()
}

func (e *RegistryUnreachableError) Unwrap() error { return e.Err }

// registryUnreachable turns err, an engine.ErrRegistryUnreachable, into a
// RegistryUnreachableError for registry; another err is returned as it is.
func registryUnreachable(err error, registry string) error {
	var already *RegistryUnreachableError
	if !errors.Is(err, engine.ErrRegistryUnreachable) || errors.As(err, &already) {
		return err
	}
	e := &RegistryUnreachableError{Registry: registry, Unresolved: engine.NameNotFound(err), Err: err}
	e.Address, e.Cause = engine.RegistryAddress(err)
	var gave *registryGaveUp
	if errors.As(err, &gave) {
		e.Attempts = gave.attempts
		e.Address, e.Cause = engine.RegistryAddress(gave.err)
	}
	return e
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
	got := false
	err := p.Engine.Pull(ctx, ref, auth, func(ev engine.Progress) {
		got = got || ev.Current > 0
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
	if err != nil && got {
		return moved{err}
	}
	return err
}

// present reports whether the engine holds ref, an exact name@digest
// reference, with that digest among the image's repo digests, reporting
// each request to o's Observer. An engine that is briefly unreachable is
// retried until ctx ends.
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
