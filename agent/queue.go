package agent

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/distribution/reference"
	"go.uber.org/zap"

	"github.com/prepull/prepull/internal/engine"
	"github.com/prepull/prepull/internal/pak"
	"github.com/prepull/prepull/internal/pull"
)

// progressEvery is how often a running pull logs its phase and bytes.
const progressEvery = 30 * time.Second

// image is an image the agent is responsible for, with its schedule.
type image struct {
	ImageState
	paks      map[string]bool    // paths of the pak files naming it
	due       time.Time          // when to ensure it next; zero when nothing is scheduled
	inflight  bool               // an Ensure call runs for it
	verifying bool               // the call checks a present image
	failures  int                // Ensure calls in a row that failed
	cancel    context.CancelFunc // ends the running Ensure call
	lastPak   string             // the name of the last pak that stopped naming it
	// engineWait says the last Ensure call failed because the engine could
	// not be reached: the image is tried again as soon as it answers.
	engineWait bool
}

// mirror gives a pak its image's status.
func mirror(p *PakState, im *image) {
	p.Status, p.Attempts, p.LastError, p.LastCause, p.ErrorKind = im.Status, im.Attempts, im.LastError, im.LastCause, im.ErrorKind
	if im.Updated.After(p.Updated) {
		p.Updated = im.Updated
	}
}

// setStatus changes an image's status and its paks'. Call with a.mu held.
func (a *Agent) setStatus(im *image, status string, now time.Time) {
	im.Status, im.Updated = status, now
	for path := range im.paks {
		if p := a.paks[path]; p != nil {
			mirror(p, im)
		}
	}
	a.markDirty()
}

// wake tells the dispatcher to look for work.
func (a *Agent) wake() {
	select {
	case a.wakeCh <- struct{}{}:
	default:
	}
}

// dispatch starts an Ensure call for every image that is due, at most
// concurrency at a time, until ctx ends.
func (a *Agent) dispatch(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		next := a.startDue(ctx)
		wait := time.Hour
		if !next.IsZero() {
			wait = max(time.Until(next), time.Millisecond)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-a.wakeCh:
		case <-timer.C:
		}
	}
}

// startDue starts the Ensure calls that are due and returns when the next
// one will be.
func (a *Agent) startDue(ctx context.Context) (next time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stopping || ctx.Err() != nil {
		return time.Time{}
	}
	var due []*image
	for _, im := range a.images {
		if !im.inflight && !im.due.IsZero() {
			due = append(due, im)
		}
	}
	slices.SortFunc(due, func(x, y *image) int {
		if c := x.due.Compare(y.due); c != 0 {
			return c
		}
		return strings.Compare(x.Reference, y.Reference)
	})
	now := time.Now()
	for _, im := range due {
		if im.due.After(now) {
			if next.IsZero() || im.due.Before(next) {
				next = im.due
			}
			continue
		}
		if a.inflight >= a.cfg.Concurrency {
			continue // a finishing call wakes the dispatcher
		}
		a.start(ctx, im)
	}
	return next
}

// start runs one Ensure call for im. Call with a.mu held.
func (a *Agent) start(ctx context.Context, im *image) {
	im.inflight, im.due = true, time.Time{}
	a.inflight++
	if im.Status != StatusPresent {
		a.setStatus(im, StatusPulling, time.Now().UTC())
	}
	target := pak.Target{
		Image:     pak.Image{File: a.pakNameOf(im), AdapterKind: im.AdapterKind, Repository: im.Reference, Digest: im.Digest},
		Registry:  registryOf(im.Reference),
		Reference: im.Reference,
	}
	p := &pull.Puller{
		Engine:      a.eng,
		Credentials: a.creds,
		Log:         a.log,
		Backoff:     a.pullBackoff,
		Progress:    pull.LogProgress(a.log, progressEvery, a.cfg.StallTimeout),
		CertsDir:    a.cfg.CertsDir,
	}
	if n, ok := a.eng.(pull.Namer); ok && a.cfg.LocalName {
		// Every check names the image again: a name removed since is
		// put back.
		p.Namer = n
	}
	opts := pull.Options{Timeout: a.cfg.PullTimeout, StallTimeout: a.cfg.StallTimeout,
		Observer: imageObserver{a: a, im: im}, LoginHint: loginHint}
	callCtx, cancel := context.WithCancel(ctx)
	im.cancel = cancel
	a.workers.Add(1)
	go func() {
		defer a.workers.Done()
		res := p.Ensure(callCtx, target, opts)
		a.finish(ctx, im, res)
		a.wake()
	}()
}

// loginHint is how an administrator adds the login a registry asked for.
const loginHint = "add it to registries in the configuration, then reload (systemctl reload prepull)"

// registryOf returns the registry host of ref, a reference as pak.Resolve
// builds it (host/repository@digest): the host the agent logs in to comes
// from the reference it pulls, whatever else the state file says. An
// unparsable ref gives "", which the pull then fails on.
func registryOf(ref string) string {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return ""
	}
	host, _, _ := strings.Cut(ref, "/")
	if d := reference.Domain(named); d != host && !(d == "docker.io" && host == "index.docker.io") {
		return d
	}
	return host
}

// pakNameOf names one pak of im, for log lines. Call with a.mu held.
func (a *Agent) pakNameOf(im *image) string {
	var names []string
	for path := range im.paks {
		names = append(names, filepath.Base(path))
	}
	if len(names) == 0 {
		return ""
	}
	slices.Sort(names)
	return names[0]
}

// finish records the outcome of an Ensure call: a present image moves its
// paks to done/; a failure is tried again later, soon when it is
// transient, slowly when it is not.
func (a *Agent) finish(ctx context.Context, im *image, res pull.Result) {
	a.mu.Lock()
	defer a.mu.Unlock()
	im.inflight = false
	a.inflight--
	verifying := im.verifying
	im.verifying = false
	now := time.Now().UTC()
	fields := func() *zap.Logger {
		return a.log.With(zap.String("pak", a.pakNameOf(im)), zap.String("reference", im.Reference),
			zap.Int("attempts", res.Attempts), zap.Int("attempts_total", im.Attempts), zap.Duration("duration", res.Duration))
	}

	im.cancel()
	if res.Err == nil {
		switch {
		case res.Status == pull.Pulled:
			im.Origin = OriginPulled
		case im.Origin == "":
			im.Origin = OriginFound
		}
	}
	if len(im.paks) == 0 {
		// Its last pak went while it was pulled or verified: unlink could
		// not let go of it then, and said nothing.
		a.letGo(im)
		return
	}
	if ctx.Err() != nil {
		if im.Status == StatusPulling {
			a.setStatus(im, StatusWaiting, now)
		}
		return
	}
	switch {
	case res.Err != nil:
		a.metrics.pullEnded(OutcomeFailed, res.Duration)
	case res.Status == pull.Pulled:
		a.metrics.pullEnded(OutcomePulled, res.Duration)
	default:
		a.metrics.pullEnded(OutcomePresent, res.Duration)
	}
	if res.Err == nil {
		im.failures = 0
		im.LastError, im.LastCause, im.ErrorKind = "", "", ""
		im.LastVerified = now
		switch {
		case res.Status == pull.Pulled:
			im.Pulls++
			im.LastPulled = now
			fields().Info("image present", zap.String("outcome", "pulled"), zap.Int("pulls", im.Pulls), zap.String("credential_source", res.CredentialSource))
		case !verifying || im.Status != StatusPresent:
			fields().Info("image present", zap.String("outcome", "already present"))
		}
		a.setStatus(im, StatusPresent, now)
		a.moveReady()
		a.wantPrune() // a newer digest may be kept now
		return
	}

	if res.Attempts == 0 {
		im.Attempts++ // a try that failed before any pull, e.g. at login
	}
	im.failures++
	im.LastError, im.LastCause, im.ErrorKind = res.Err.Error(), pull.Cause(res.Err), errorKind(res.Err)
	im.engineWait = errors.Is(res.Err, engine.ErrUnreachable)
	log := fields()
	if errors.Is(res.Err, pull.ErrPlatform) {
		// The image can never run on this engine: its paks name no
		// pullable image and go to failed/ with the reason, as take does.
		log.Error("image cannot run on this engine, moving its paks to failed/", zap.Error(res.Err))
		a.failPlatform(im, res.Err, now)
		return
	}
	if pull.Transient(res.Err) {
		im.due = time.Now().Add(a.retryBackoff.Delay(im.failures))
		a.setStatus(im, StatusWaiting, now)
		log.Warn("cannot ensure image, will retry", zap.Duration("retry_in", time.Until(im.due).Round(time.Second)), zap.Error(res.Err))
		return
	}
	im.due = time.Now().Add(a.slowBackoff.Delay(im.failures))
	a.setStatus(im, StatusFailed, now)
	log.Error("cannot pull image, will retry slowly (reload to retry now)", zap.Duration("retry_in", time.Until(im.due).Round(time.Second)), zap.Error(res.Err))
}

// failPlatform files the paks of im, whose image can never run on this
// engine, as naming no pullable image: each goes to failed/ with the
// reason, as take does. Call with a.mu held.
func (a *Agent) failPlatform(im *image, err error, now time.Time) {
	var inDone []*PakState
	for path := range im.paks {
		p := a.paks[path]
		if p == nil {
			continue
		}
		a.unlink(p)
		// The row keeps the reference: the image, not the pak, is at fault.
		p.Status, p.LastError, p.LastCause, p.ErrorKind, p.Attempts, p.Updated = StatusInvalid, err.Error(), pull.Cause(err), ErrorPlatform, 0, now
		if filepath.Dir(path) == a.doneDir {
			inDone = append(inDone, p)
		}
	}
	if len(inDone) > 0 {
		if b := a.openInbox(); b != nil {
			for _, p := range inDone {
				a.moveTo(b, p, FailedDir)
			}
			b.close()
		}
	}
	a.markDirty()
	a.moveReady()
}

// scheduleVerify has every present image checked, and pulled again if it
// vanished.
func (a *Agent) scheduleVerify() {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := time.Now()
	for _, im := range a.images {
		if im.Status == StatusPresent && !im.inflight && im.due.IsZero() {
			im.due, im.verifying = now, true
		}
	}
	a.wake()
}

// imageObserver hears what one Ensure call for an image does: its pull
// attempts, and whether the engine answered.
type imageObserver struct {
	a  *Agent
	im *image
}

func (o imageObserver) PullAttempt(n int) { o.a.pullStarting(o.im, n) }
func (o imageObserver) Engine(err error) {
	o.a.mu.Lock()
	defer o.a.mu.Unlock()
	o.a.setEngine(err)
}

// Retrying shows in the state why a try inside the call failed, while the
// call goes on.
func (o imageObserver) Retrying(_ string, err error) {
	o.a.mu.Lock()
	defer o.a.mu.Unlock()
	o.im.LastError, o.im.LastCause, o.im.ErrorKind = err.Error(), pull.Cause(err), errorKind(err)
	o.a.setStatus(o.im, o.im.Status, time.Now().UTC())
}

// pullStarting records that pull attempt n of an Ensure call for im starts.
func (a *Agent) pullStarting(im *image, n int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if n == 1 && im.Status == StatusPresent {
		im.Attempts = 0
		a.log.Warn("image vanished from the engine, pulling it again", zap.String("pak", a.pakNameOf(im)), zap.String("reference", im.Reference))
	}
	im.Attempts++
	a.setStatus(im, StatusPulling, time.Now().UTC())
	a.saveNow() // a crash from here on finds the attempt recorded
	a.log.Info("pulling image", zap.String("pak", a.pakNameOf(im)), zap.String("reference", im.Reference),
		zap.Int("attempt", n), zap.Int("attempts_total", im.Attempts))
}
